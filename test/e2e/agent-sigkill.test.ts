import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import { sodium } from '../../agent/envelope/sodium.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';

const KILLS = Number(process.env.EDGE_SIGKILLS ?? 24);
const TOTAL = 200_000;

function startAgentProcess(config: string): { child: ChildProcess; exited: Promise<NodeJS.Signals | number | null>; stderr: () => string } {
  const child = spawn(process.execPath, ['agent/cli/main.ts', 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return { child, exited, stderr: () => stderr };
}

// The agent is SIGKILLed at random moments while it ingests and sends, then started again, KILLS times.
// Whatever it had committed must reach the receiver exactly once: the synthetic source numbers its records
// 1, 2, 3… and resumes from its committed cursor, so any loss shows as a gap and any repeat as a duplicate.
test(`agent SIGKILLed ${KILLS} times mid-stream: the receiver's output is exactly the source's sequence`, async () => {
  const ws = await workspace();
  const broker = await startMosquitto();
  const loaded = writeConfig(
    ws.dir,
    agentYaml(broker.url, {
      sources: `  - { type: synthetic, name: gen, rate: 25000, batch: 250, count: ${TOTAL} }`,
      extra: 'queue: { commit_interval: 20ms }\nbatch: { max_records: 500 }',
    }),
  );
  const output = new CollectingOutput();
  const receiver = await startReceiver(await sodium(), loaded, silentLogger, { output });
  try {
    let kills = 0;
    while (kills < KILLS && output.records.length < TOTAL) {
      const agent = startAgentProcess(loaded.path);
      const progressFrom = output.records.length;
      // Kill only once this incarnation has delivered something, so every kill lands mid-stream, then at a
      // random point within the next 0–150 ms of its work.
      const progressed = output.waitFor(() => output.records.length > progressFrom, 'progress after a restart', 30_000);
      const ended = agent.exited.then((how) => {
        throw new Error(`agent exited on its own (${String(how)}): ${agent.stderr()}`);
      });
      await Promise.race([progressed, ended]);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 150)));
      agent.child.kill('SIGKILL');
      ended.catch(() => {});
      assert.equal(await agent.exited, 'SIGKILL');
      kills++;
    }
    assert.equal(kills, KILLS, `the stream ended after ${kills} kills; make it longer`);
    const last = startAgentProcess(loaded.path);
    await output.waitFor(() => output.records.length >= TOTAL, `all ${TOTAL} records after ${kills} kills`, 180_000);
    last.child.kill('SIGTERM');
    assert.equal(await last.exited, 0, last.stderr());
    const numbers = output.numbers();
    const sorted = [...numbers].sort((a, b) => a - b);
    const dupes = sorted.filter((n, i) => i > 0 && sorted[i - 1] === n).length;
    assert.equal(dupes, 0, 'no record reaches the output twice');
    assert.equal(numbers.length, TOTAL);
    assert.deepEqual(
      sorted,
      Array.from({ length: TOTAL }, (_, i) => i + 1),
      'no record lost',
    );
    const stats = receiver.receiver.stats();
    assert.ok(stats.duplicates >= 0);
    process.stdout.write(`# ${kills} SIGKILLs: ${TOTAL} records delivered exactly once; receiver dropped ${stats.duplicates} duplicate batches\n`);
  } finally {
    await receiver.close();
    await broker.stop();
    ws.cleanup();
  }
});
