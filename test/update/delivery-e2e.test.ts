/**
 * One whole update, end to end, with the real executables: a layout installed by `edge-agent install`
 * running 1.0.0 under the stand-in for systemd (test/helpers/unit-supervisor.ts), remote control on a real
 * Mosquitto, and `edge-agent fleet push-update --wait` run as an operator would. The device takes the
 * manifest, copies every chunk it has from the executable it runs (the same build: nothing is fetched),
 * stages 1.1.0, begins the trial and exits 3 (RESTART_INTO_TRIAL_EXIT); the unit restarts into 1.1.0, which passes its health gate and
 * commits; push-update prints `committed` and exits 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeKeyFiles } from '../../agent/trust/index.ts';
import { type Mosquitto, startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { builtExecutable } from '../helpers/executable.ts';
import { makeOperator, PREFIX } from '../helpers/fleet.ts';
import { installLayout } from '../helpers/update-layout.ts';
import { UnitSupervisor } from '../helpers/unit-supervisor.ts';
import { RESTART_INTO_TRIAL_EXIT } from '../../agent/update/guard.ts';

let mosquitto: Mosquitto;
let supervisor: UnitSupervisor | undefined;
const dir = mkdtempSync(join(tmpdir(), 'edge-update-e2e-'));

before(async () => {
  builtExecutable('linux-x64');
  mosquitto = await startMosquitto();
});
after(async () => {
  await supervisor?.stop();
  await mosquitto?.stop();
  // The releases (2 × 116 MB); the unit's log stays, the stand-in for systemd may still append to it.
  if (!process.env.KEEP_UPDATE_DIRS) rmSync(join(dir, 'state', 'releases'), { recursive: true, force: true });
});

test('push-update: 1.0.0 → 1.1.0 delivered over MQTT, restarted into, committed', async () => {
  const layout = installLayout(dir);
  const op = makeOperator();
  appendFileSync(
    layout.configPath,
    `fleet:\n  enabled: true\n  broker: { url: ${mosquitto.url} }\n  topic_prefix: ${PREFIX}\n  trust: { root_keys: [${op.root.public}], threshold: 1 }\n  update: { enabled: true }\n`,
  );
  writeKeyFiles(join(dir, 'alice.key'), join(dir, 'alice.pub'), 'operator', 'alice', op.key);
  writeFileSync(join(dir, 'alice.cert'), JSON.stringify(op.certificate));
  supervisor = new UnitSupervisor(layout.unitPath, layout.logPath, { EDGE_AGENT_NATIVE_CACHE: join(layout.dir, 'native') });
  await supervisor.start();
  await supervisor.waitFor(() => supervisor!.events.some((e) => e.type === 'ready' && e.release === '1.0.0'), '1.0.0 ready', 60_000);
  const push = spawn(
    process.execPath,
    [
      'agent/cli/main.ts',
      'fleet',
      'push-update',
      layout.executable,
      '--version',
      '1.1.0',
      '--release',
      '2',
      '--to',
      'device:update-gw',
      '--operator-key',
      join(dir, 'alice.key'),
      '--operator-cert',
      join(dir, 'alice.cert'),
      '--broker',
      mosquitto.url,
      '--prefix',
      PREFIX,
      '--wait',
      '--timeout',
      process.env.UPDATE_E2E_TIMEOUT_S ?? '120',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  push.stdout!.on('data', (d) => (stdout += d));
  push.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-5_000)));
  const code = await new Promise<number | null>((resolve) => push.once('exit', resolve));
  assert.equal(code, 0, `${stdout}\n${stderr}\n${JSON.stringify(supervisor.events)}\n${JSON.stringify(layout.store.state())}`);
  assert.match(stdout, /update-gw: committed; served 0 bytes of \d+/);
  const state = layout.store.state();
  assert.equal(state.committed, '1.1.0');
  assert.equal(state.previous, '1.0.0');
  assert.equal(state.highest_release_counter, 2);
  assert.ok(
    supervisor.events.some((e) => e.type === 'exited' && e.release === '1.0.0' && e.status === String(RESTART_INTO_TRIAL_EXIT)),
    JSON.stringify(supervisor.events),
  );
});
