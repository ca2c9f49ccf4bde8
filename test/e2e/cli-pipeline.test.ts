import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, existsSync, watch } from 'node:fs';
import { join } from 'node:path';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';

const TOTAL = 5_000;

function run(args: string[]) {
  const child = spawn(process.execPath, ['agent/cli/main.ts', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stderrMatches = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(stderr)) {
          child.stderr!.off('data', check);
          resolve();
        }
      };
      child.stderr!.on('data', check);
      void exited.then((code) => reject(new Error(`exited (${code}) before ${pattern}: ${stderr}`)));
      check();
    });
  return { child, exited, stderr: () => stderr, stderrMatches };
}

function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

// The shipped commands as separate processes: `run` on the gateway side, `receive` at the centre writing
// JSON lines to a file, through a real Mosquitto.
test('edge-agent run → Mosquitto → edge-agent receive: JSON lines in the output file, each record once', async () => {
  const ws = await workspace();
  const broker = await startMosquitto({ persistence: true });
  const out = join(ws.dir, 'received.jsonl');
  const config = writeConfig(
    ws.dir,
    `${agentYaml(broker.url, { sources: `  - { type: synthetic, name: gen, rate: 5000, batch: 100, count: ${TOTAL} }` })}  output: ${out}\n`,
  );
  // As in production, the centre subscribes before gateways publish: a broker discards what it acknowledges
  // for a topic nobody has subscribed to yet (docs/operations.md). The receiver logs at info to say when.
  const centre = writeConfig(ws.dir, config.yaml.replace('level: warn', 'level: info'), 'centre.yaml');
  const receiver = run(['receive', '--config', centre.path]);
  await receiver.stderrMatches(/"msg":"subscribed"/);
  const agent = run(['run', '--config', config.path]);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        watcher.close();
        reject(new Error(`only ${lines(out).length} of ${TOTAL} lines; receiver: ${receiver.stderr()} agent: ${agent.stderr()}`));
      }, 60_000);
      const check = () => {
        if (lines(out).length >= TOTAL) {
          clearTimeout(timer);
          watcher.close();
          resolve();
        }
      };
      const watcher = watch(ws.dir, check);
      check();
    });
    const parsed = lines(out).map((l) => JSON.parse(l) as { device: string; stream: string; seq: number; record: { n: number; ts: number } });
    assert.equal(parsed.length, TOTAL);
    assert.deepEqual(
      parsed.map((p) => p.record.n).sort((a, b) => a - b),
      Array.from({ length: TOTAL }, (_, i) => i + 1),
    );
    assert.ok(parsed.every((p) => p.device === 'gw-test' && p.stream === 'gen' && Number.isInteger(p.record.ts)));
  } finally {
    agent.child.kill('SIGTERM');
    receiver.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0, agent.stderr());
    assert.equal(await receiver.exited, 0, receiver.stderr());
    await broker.stop();
    ws.cleanup();
  }
});
