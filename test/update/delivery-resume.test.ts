/**
 * A download that is cut short resumes where it stopped: the connection dropped (the broker killed and
 * started again) at 10 %, 50 % and 99 % of the bytes to fetch, and the device killed with SIGKILL mid-chunk
 * and as the last chunk arrives. The real chunk server counts the bytes it served: each run fetches what was
 * missing plus at most the chunks in flight (and, after a kill, those written since the last progress
 * record), never the whole again. Each run ends with exactly one new release in trial, byte for byte the
 * manifest's, and the old one still committed.
 *
 * The device runs the real build. What it downloads is the first UPDATE_TEST_FILE_MIB (default 24) MiB of that
 * build (an ELF file the release store stages like the whole; the whole 116 MB would only make each round
 * slower, see scripts/bench/update-delivery.ts for full-size figures), and what it copies chunks from
 * (EDGE_AGENT_UPDATE_LOCAL_SOURCE) is the same with UPDATE_TEST_CHANGED_MIB (default 8) MiB overwritten, so
 * only that part and the chunks around it travel.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, openSync, readFileSync, readlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { cdcOfFile } from '../../agent/update/cdc.ts';
import { builtExecutable } from '../helpers/executable.ts';
import { type AgentProcess, makeOperator, type Operator, PREFIX, until, Watcher } from '../helpers/fleet.ts';
import { DEVICE_TOPICS, serveRelease, servedBytes, signedRelease, type SignedRelease, startDevice, updateDevice } from '../helpers/update-delivery.ts';
import { RESTART_INTO_TRIAL_EXIT } from '../../agent/update/guard.ts';

const CHANGED = Number(process.env.UPDATE_TEST_CHANGED_MIB ?? 8) * 1024 * 1024;
const IN_FLIGHT = 8;
const MAP_EVERY = 16;
const MAX_CHUNK = 64 * 1024;
const FILE_BYTES = Number(process.env.UPDATE_TEST_FILE_MIB ?? 24) * 1024 * 1024;
let exe: string;
let newExe: string;
let oldExe: string;
let broker: Mosquitto;
const brokers: Mosquitto[] = [];
let op: Operator;
let release: SignedRelease;
let missing: number;
let round = 0;
const running: AgentProcess[] = [];

before(async () => {
  exe = builtExecutable('linux-x64');
  broker = await startMosquitto();
  op = makeOperator();
  newExe = join(broker.dir, 'new-edge-agent');
  oldExe = join(broker.dir, 'old-edge-agent');
  copyFileSync(exe, newExe);
  truncateSync(newExe, FILE_BYTES);
  copyFileSync(newExe, oldExe);
  const fd = openSync(oldExe, 'r+');
  writeSync(fd, randomBytes(CHANGED), 0, CHANGED, Math.floor((FILE_BYTES - CHANGED) / 2));
  closeSync(fd);
  release = await signedRelease(op, { path: newExe, version: '2.0.0', release: 2, arch: 'x64', target: { group: 'resume' } });
  const have = new Set((await cdcOfFile(oldExe)).map((c) => c.sha256.toString('hex')));
  const needed = new Map(release.chunks.filter((c) => !have.has(c.sha256.toString('hex'))).map((c) => [c.sha256.toString('hex'), c.length]));
  missing = [...needed.values()].reduce((a, b) => a + b, 0);
  assert.ok(missing >= CHANGED / 2 && missing < CHANGED + 64 * MAX_CHUNK, `${missing} bytes to fetch for ${CHANGED} changed`);
});

after(async () => {
  for (const p of running) p.child.kill('SIGKILL');
  await broker?.stop();
  for (const b of brokers) await b.stop();
});

/**
 * One device downloads the release while `interrupt` runs once, at `fraction` of the bytes to fetch; returns
 * the executable bytes served to it. `interrupt` gets the device's process and may replace it.
 */
async function downloadWith(
  fraction: number,
  phase: 'before' | 'after',
  interrupt: (device: { proc: AgentProcess; restart(): AgentProcess }, broker: Mosquitto) => Promise<void>,
): Promise<number> {
  const name = `gw-resume-${++round}`;
  // A broker of its own: the rounds run side by side, and a dropped connection is this round's only.
  const broker = await startMosquitto({ persistence: true });
  brokers.push(broker);
  const t = DEVICE_TOPICS(name);
  const device = await updateDevice(broker.url, name, op, { version: '1.0.0', executable: '/bin/true', release: 1 });
  const fleetGroups = readFileSync(device.config, 'utf8').replace('groups: []', 'groups: [resume]');
  writeFileSync(device.config, fleetGroups);
  const env = { EDGE_AGENT_UPDATE_LOCAL_SOURCE: oldExe };
  const handle = {
    proc: startDevice(device.config, { executable: exe, env }),
    restart() {
      this.proc = startDevice(device.config, { executable: exe, env });
      running.push(this.proc);
      return this.proc;
    },
  };
  running.push(handle.proc);
  const watcher = await Watcher.connect(broker.url, [t.status]);
  await until(() => watcher.json(t.status)?.online === true, `${name} online`, 30_000, handle.proc.stderr);
  let interrupted = false;
  const served = await serveRelease(broker.url, newExe, release, async (bytes, when) => {
    // Before a chunk, the bytes served stop short of the total by at most one chunk.
    if (interrupted || when !== phase || bytes < Math.min(fraction * missing, missing - MAX_CHUNK)) return;
    interrupted = true;
    await interrupt(handle, broker);
  });
  try {
    await watcher.client.publishAsync(`${PREFIX}/group/resume/update/timestamp`, JSON.stringify(release.timestamp()), { qos: 1, retain: true });
    await watcher.client.publishAsync(`${PREFIX}/group/resume/update`, JSON.stringify(release.envelope), { qos: 1, retain: true });
    // The device ends itself to restart into the trial (RESTART_INTO_TRIAL_EXIT) once the release is staged.
    let code: unknown;
    await until(
      () => {
        code = handle.proc.child.exitCode;
        return (
          code !== null &&
          handle.proc.child.exitCode !== undefined &&
          (code === RESTART_INTO_TRIAL_EXIT || !interrupted || handle.proc.child.signalCode === null)
        );
      },
      `${name} to stage the release and restart into it`,
      60_000,
      () =>
        handle.proc
          .stderr()
          .split('\n')
          .filter((l) => !l.includes('puback_no_subscribers') && !l.includes('SINK_NOT_DELIVERED'))
          .join('\n')
          .slice(-4000),
    );
    assert.equal(code, RESTART_INTO_TRIAL_EXIT, handle.proc.stderr().slice(-3000));
    assert.ok(interrupted, 'the interruption happened');
    const state = device.releases.state();
    assert.equal(state.trial?.version, '2.0.0');
    assert.equal(state.committed, '1.0.0');
    assert.equal(readlinkSync(join(device.dir, 'releases', 'current')), join('releases', '2.0.0'));
    const staged = createHash('sha256')
      .update(readFileSync(device.releases.executablePath('2.0.0')))
      .digest('hex');
    assert.equal(staged, release.document.sha256);
    return servedBytes(served.server, name);
  } finally {
    await served.close();
    await watcher.close();
  }
}

test('a connection dropped at 10 %, 50 % and 99 % fetches only what is missing', async () => {
  const served = await Promise.all(
    [0.1, 0.5, 0.99].map((fraction) =>
      downloadWith(fraction, 'before', async (_device, broker) => {
        await broker.kill();
        await broker.restart();
      }),
    ),
  );
  for (const [i, bytes] of served.entries()) {
    // What was missing, plus at most the window in flight when the connection dropped (asked for again).
    assert.ok(bytes >= missing, `round ${i}: served ${bytes} < ${missing} missing`);
    assert.ok(bytes <= missing + (IN_FLIGHT + 1) * MAX_CHUNK, `round ${i}: served ${bytes}, missing ${missing}: more than the window again`);
  }
});

test('kill -9 mid-chunk and as the last chunk arrives: the restarted device resumes and ends with the new release staged once', async () => {
  const kill = async (device: { proc: AgentProcess; restart(): AgentProcess }) => {
    device.proc.child.kill('SIGKILL');
    await device.proc.exited;
    device.restart();
  };
  const [midChunk, lastChunk] = await Promise.all([downloadWith(0.5, 'before', kill), downloadWith(1, 'after', kill)]);
  // What was missing, plus what arrived after the last progress record and what was in flight.
  assert.ok(midChunk! >= missing, `served ${midChunk} < ${missing} missing`);
  assert.ok(midChunk! <= missing + (MAP_EVERY + IN_FLIGHT + 1) * MAX_CHUNK, `mid-chunk: served ${midChunk}, missing ${missing}`);
  assert.ok(lastChunk! <= missing + (MAP_EVERY + IN_FLIGHT + 1) * MAX_CHUNK, `last chunk: served ${lastChunk}, missing ${missing}`);
});
