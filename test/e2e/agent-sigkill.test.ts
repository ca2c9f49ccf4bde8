import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';

const KILLS = Number(process.env.EDGE_SIGKILLS ?? 24);
/** Each incarnation is killed once it has delivered at least this many records (plus a random share of it). */
const RECORDS_PER_KILL = 400;

function startAgentProcess(config: string): { child: ChildProcess; exited: Promise<NodeJS.Signals | number | null>; stderr: () => string } {
  const child = spawn(process.execPath, ['agent/cli/main.ts', 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return { child, exited, stderr: () => stderr };
}

/** Polls a condition on another process's output (there is no event to wait on), failing after `timeoutMs`. */
async function until(test: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The source's committed cursor, read from the queue file of a dead agent. */
function committedCursor(dataDir: string, source: string): number {
  const db = new Database(join(dataDir, 'queue.db'), { readonly: true });
  try {
    const raw = db.prepare('SELECT value FROM cursors WHERE source = ?').pluck().get(source) as string | undefined;
    return raw === undefined ? 0 : (JSON.parse(raw) as number);
  } finally {
    db.close();
  }
}

// The agent is SIGKILLed mid-stream KILLS times and started again. Kills are counted by what happened, not
// by the clock: the source never ends on its own, each incarnation is killed once it has delivered a few
// hundred more records, so a slow machine takes longer but always gets its KILLS kills. Then the source is
// told to stop at the cursor the queue file holds, and whatever was committed must reach the receiver
// exactly once: the synthetic source numbers its records 1, 2, 3… and resumes from its committed cursor, so
// any loss shows as a gap and any repeat as a duplicate.
test(`agent SIGKILLed ${KILLS} times mid-stream: the receiver's output is exactly the source's sequence`, async () => {
  const ws = await workspace();
  const broker = await startMosquitto();
  const yaml = (count: number) =>
    agentYaml(broker.url, {
      sources: `  - { type: synthetic, name: gen, rate: 5000, batch: 250, count: ${count} }`,
      extra: 'queue: { commit_interval: 20ms }\nbatch: { max_records: 500 }',
    });
  const loaded = writeConfig(ws.dir, yaml(0));
  const output = new CollectingOutput();
  const receiver = await startReceiver(x25519, loaded, silentLogger, { output });
  try {
    for (let kill = 1; kill <= KILLS; kill++) {
      const agent = startAgentProcess(loaded.path);
      const want = output.records.length + RECORDS_PER_KILL + Math.floor(Math.random() * RECORDS_PER_KILL);
      const delivered = output.waitFor(() => output.records.length >= want, `${want} records before kill ${kill}`, 120_000);
      const ended = agent.exited.then((how) => {
        throw new Error(`agent exited on its own (${String(how)}) before kill ${kill}: ${agent.stderr()}`);
      });
      ended.catch(() => {});
      try {
        await Promise.race([delivered, ended]);
      } finally {
        agent.child.kill('SIGKILL');
      }
      assert.equal(await agent.exited, 'SIGKILL');
    }
    const total = committedCursor(join(ws.dir, 'data'), 'gen');
    assert.ok(total >= KILLS * RECORDS_PER_KILL, `the queue committed ${total} records`);
    // The last incarnation generates nothing more: its count is what the queue already holds.
    // It logs at info so the test can tell it is running (a SIGTERM before then is not a clean stop).
    const final = writeConfig(ws.dir, yaml(total).replace('level: warn', 'level: info'));
    const last = startAgentProcess(final.path);
    await output.waitFor(() => output.records.length >= total, `all ${total} records after ${KILLS} kills`, 180_000);
    await until(() => last.stderr().includes('"msg":"agent running"'), 'the last agent to be running', 60_000);
    last.child.kill('SIGTERM');
    assert.equal(await last.exited, 0, last.stderr());
    const numbers = output.numbers();
    const sorted = [...numbers].sort((a, b) => a - b);
    const dupes = sorted.filter((n, i) => i > 0 && sorted[i - 1] === n).length;
    assert.equal(dupes, 0, 'no record reaches the output twice');
    assert.equal(numbers.length, total);
    assert.deepEqual(
      sorted,
      Array.from({ length: total }, (_, i) => i + 1),
      'no record lost',
    );
    const stats = receiver.receiver.stats();
    process.stdout.write(`# ${KILLS} SIGKILLs: ${total} records delivered exactly once; receiver dropped ${stats.duplicates} duplicate batches\n`);
  } finally {
    await receiver.close();
    await broker.stop();
    ws.cleanup();
  }
});
