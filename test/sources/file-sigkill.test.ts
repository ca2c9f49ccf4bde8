/**
 * The file source under a real writer and a real agent process killed with SIGKILL at random moments. The
 * writer (test/helpers/log-writer.ts, its own process) appends JSON lines, leaves partial lines, rotates by
 * rename and by copytruncate; the test also truncates the file by hand once per round (only after everything
 * written so far was delivered: a plain truncation loses unread lines for any tailer). Every line must reach
 * the real receiver exactly once, and the lines of each physical file in the order they were written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { startLoggingAgent } from '../helpers/agent-process.ts';
import { until } from '../helpers/processes.ts';

const KILLS = Number(process.env.EDGE_FILE_SIGKILLS ?? 4);
const WRITER = resolve(import.meta.dirname, '../helpers/log-writer.ts');

type WriterMessage = { ready: true } | { paused: true; seq: number } | { truncated: true } | { stopped: true; seq: number };

function startWriter(file: string): { child: ChildProcess; next: <T extends WriterMessage>(send?: string) => Promise<T> } {
  const child = spawn(process.execPath, [WRITER, file], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ROTATE_EVERY: '250' } });
  const queue: WriterMessage[] = [];
  let waiting: ((m: WriterMessage) => void) | undefined;
  child.on('message', (m: WriterMessage) => {
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w(m);
    } else queue.push(m);
  });
  const next = <T extends WriterMessage>(send?: string) => {
    if (send) child.send(send);
    const queued = queue.shift();
    if (queued) return Promise.resolve(queued as T);
    return new Promise<T>((done) => (waiting = done as (m: WriterMessage) => void));
  };
  return { child, next };
}

test(`file source: writer rotating (rename, copytruncate) and truncating, agent SIGKILLed ${KILLS} times: every line once, in order per file`, async () => {
  const ws = await workspace('edge-file-kill-');
  const broker = await startMosquitto();
  const log = join(ws.dir, 'logs', 'instrument.log');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(ws.dir, 'logs'));
  const loaded = writeConfig(
    ws.dir,
    agentYaml(broker.url, {
      sources: `  - { type: file, name: tail, paths: [logs/instrument.log], format: { type: json_lines }, start_at: beginning, poll_interval: 50ms, rotate_wait: 200ms }`,
      extra: 'queue: { commit_interval: 20ms }\nbatch: { max_records: 200 }',
    }).replace('level: warn', 'level: info'),
  );
  const output = new CollectingOutput();
  const receiver = await startReceiver(x25519, loaded, silentLogger, { output });
  const writer = startWriter(log);
  const seqs = () => output.records.map((r) => r.record.seq as number);
  const have = () => new Set(seqs());
  const logs: Record<string, unknown>[][] = [];
  let alive: ChildProcess | undefined;
  try {
    await writer.next();
    for (let kill = 1; kill <= KILLS; kill++) {
      const agent = startLoggingAgent(loaded.path, ws.dir);
      alive = agent.child;
      logs.push(agent.lines());
      const ended = agent.exited.then((how) => {
        throw new Error(`agent exited on its own (${String(how)}) in round ${kill}: ${JSON.stringify(agent.lines().slice(-5))}`);
      });
      ended.catch(() => {});
      try {
        // Once per round, a truncation by hand, after the reader caught up with the writer.
        const { seq } = await writer.next<{ paused: true; seq: number }>('pause');
        await Promise.race([output.waitFor(() => have().size >= seq, `all ${seq} lines before truncating`, 60_000), ended]);
        await writer.next('truncate');
        writer.child.send('resume');
        // Then the kill, after a random number of further lines delivered.
        const want = output.records.length + 100 + Math.floor(Math.random() * 500);
        await Promise.race([output.waitFor(() => output.records.length >= want, `${want} records before kill ${kill}`, 60_000), ended]);
      } finally {
        agent.child.kill('SIGKILL');
      }
      assert.equal(await agent.exited, 'SIGKILL');
    }
    const { seq: total } = await writer.next<{ stopped: true; seq: number }>('stop');
    const last = startLoggingAgent(loaded.path, ws.dir);
    alive = last.child;
    logs.push(last.lines());
    await output.waitFor(() => have().size >= total, `all ${total} lines after ${KILLS} kills`, 60_000);
    // A SIGTERM before the agent installed its handlers is no clean stop: wait until it says it runs.
    await until(() => last.lines().some((l) => l.msg === 'agent running'), 'the last agent to be running');
    last.child.kill('SIGTERM');
    assert.equal(await last.exited, 0);

    const delivered = seqs();
    const counts = new Map<number, number>();
    for (const s of delivered) counts.set(s, (counts.get(s) ?? 0) + 1);
    const repeated = [...counts].filter(([, n]) => n > 1).map(([s]) => s);
    const missing = Array.from({ length: total }, (_, i) => i).filter((s) => !counts.has(s));
    assert.deepEqual(missing, [], 'no line lost');
    assert.deepEqual(repeated.slice(0, 20), [], 'no line delivered twice');
    // Per physical file (gen), the lines arrive in the order written.
    const lastOfGen = new Map<number, number>();
    const outOfOrder: string[] = [];
    for (const { record } of output.records) {
      const gen = record.gen as number;
      const s = record.seq as number;
      if ((lastOfGen.get(gen) ?? -1) > s) outOfOrder.push(`${s} after ${lastOfGen.get(gen)} in file ${gen}`);
      lastOfGen.set(gen, s);
    }
    assert.deepEqual(outOfOrder.slice(0, 10), [], 'in order within each file');
    const said = (msg: string) => logs.flat().filter((l) => l.msg === msg).length;
    const opened = said('following file');
    const copies = said('file truncated; reading the rest of its copy first');
    const truncations = said('file truncated; reading it again from its start');
    process.stdout.write(
      `# ${total} lines in ${lastOfGen.size} files, ${KILLS} SIGKILLs: each delivered once, in order per file (${opened} files opened, ${copies} copies read after copytruncate, ${truncations} plain truncations)\n`,
    );
  } finally {
    if (alive?.exitCode === null && alive.signalCode === null) alive.kill('SIGKILL');
    writer.child.kill();
    await receiver.close();
    await broker.stop();
    ws.cleanup();
  }
});
