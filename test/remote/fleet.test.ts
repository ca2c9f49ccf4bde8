/**
 * A fleet of agents as processes (EDGE_FLEET_AGENTS, default 20) on one Mosquitto: `fleet list` shows them
 * all, a group push with `fleet push --wait` reaches every one and is committed, and the three made to fail
 * report why: one trusts another root (refused, unknown_key), two have a sink that cannot connect (rolled
 * back, health:sink).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generatePair } from '../../agent/trust/index.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { type AgentProcess, fleetAgentDir, makeOperator, PREFIX, signedConfig, startAgentProcess, Watcher } from '../helpers/fleet.ts';

const AGENTS = Number(process.env.EDGE_FLEET_AGENTS ?? 20);

function cli(args: string[], timeoutMs = 240_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['agent/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test(`${AGENTS} agents as processes: listed, a group push reaches all, three made to fail say why`, { timeout: 600_000 }, async () => {
  assert.ok(AGENTS >= 4, 'EDGE_FLEET_AGENTS must be at least 4 (three are made to fail)');
  const broker = await startMosquitto();
  // Batches count as delivered only when someone subscribes (MQTT 5 "no matching subscribers"): the centre.
  const centre = await Watcher.connect(broker.url, ['edge-agent/v1/#']);
  const op = makeOperator();
  const nowhere = `mqtt://127.0.0.1:${await freePort()}`;
  const agents: AgentProcess[] = [];
  const names = Array.from({ length: AGENTS }, (_, i) => `gw-${String(i + 1).padStart(2, '0')}`);
  const strangerRoot = generatePair();
  try {
    for (const [i, device] of names.entries()) {
      const root = i === 0 ? strangerRoot : op.root;
      const sinkUrl = i === 1 || i === 2 ? nowhere : broker.url;
      const { config } = await fleetAgentDir(broker.url, device, root, {
        groups: ['site-a'],
        rate: 5,
        healthDeadline: '10s',
      });
      if (sinkUrl !== broker.url) {
        writeFileSync(config, readFileSync(config, 'utf8').replace(`sink:\n  type: mqtt\n  url: ${broker.url}`, `sink:\n  type: mqtt\n  url: ${sinkUrl}`));
      }
      agents.push(startAgentProcess(config));
    }
    const common = ['--broker', broker.url, '--prefix', PREFIX];
    const startedAt = Date.now();
    let listing = '';
    for (;;) {
      listing = (await cli(['fleet', 'list', ...common])).stdout;
      if (listing.includes(`${AGENTS} device(s), ${AGENTS} online`)) break;
      const dead = agents.find((a) => a.child.exitCode !== null);
      if (dead) throw new Error(`an agent exited: ${dead.stderr()}`);
      if (Date.now() - startedAt > 300_000) throw new Error(`not all online after 300 s:\n${listing}`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    console.log(`all ${AGENTS} online in fleet list after ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    for (const device of names) assert.match(listing, new RegExp(`^${device}\\s+yes\\s+1\\s`, 'm'));

    // Each healthy device must have delivered before the push, so the health gate's canary is the only unknown.
    const envelope = signedConfig(op, { group: 'site-a' }, 1, { sources: [{ name: 'gen', type: 'synthetic', rate: 8, batch: 5 }] });
    const file = join(broker.dir, 'site-a.json');
    writeFileSync(file, JSON.stringify(envelope));
    const pushed = await cli(['fleet', 'push', ...common, '--target', 'group:site-a', '--wait', '--timeout', '240', file], 300_000);
    console.log(pushed.stdout);
    assert.equal(pushed.code, 1, `one device refused and two rolled back: exit 1\n${pushed.stdout}\n${pushed.stderr}`);
    assert.match(pushed.stdout, new RegExp(`${AGENTS} device\\(s\\): ${AGENTS - 3} committed, 0 unchanged, 2 rolled back, 1 refused, 0 no answer`));
    assert.match(pushed.stdout, /gw-01: refused unknown_key/);
    assert.match(pushed.stdout, /gw-02: rolled_back health:sink/);
    assert.match(pushed.stdout, /gw-03: rolled_back health:sink/);
    assert.match(pushed.stderr, new RegExp(`\\[${AGENTS}/${AGENTS}\\]`), 'progress lines');

    // The listing shows the new config version on the committed ones.
    listing = (await cli(['fleet', 'list', ...common])).stdout;
    for (const device of names.slice(3)) assert.match(listing, new RegExp(`^${device}\\s+yes\\s+1\\s+\\S+\\s+\\S+\\+g:site-a=1`, 'm'));
    for (const device of names.slice(0, 3)) assert.doesNotMatch(listing, new RegExp(`^${device}\\s+.*g:site-a=1`, 'm'));
  } finally {
    for (const a of agents) a.child.kill('SIGKILL');
    await Promise.all(agents.map((a) => a.exited));
    await centre.close();
    await broker.stop();
  }
});
