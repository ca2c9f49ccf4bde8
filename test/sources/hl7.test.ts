/**
 * The hl7 source against the real MLLP sender of Debian's python3-hl7 (`mllp_send`), the way a lab system's
 * interface sends: one message, wait for its ACK, the next. The gateway side runs in a child process (this
 * file, started with HL7_WORKER set) with a real queue; it reports each commit over IPC and, for the messages
 * the test picks, is SIGKILLed right after the commit and before the ACK goes out, which is the case where the
 * sender must send again and the gateway must not queue the message twice.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { hl7Source } from '../../drivers/sources/hl7/index.ts';
import { mllpFrame } from '../../drivers/sources/hl7/mllp.ts';
import { Queue } from '../../agent/queue/queue.ts';
import { silentLogger } from '../../agent/log.ts';
import { decodeRecords } from '../../agent/envelope/codec.ts';
import type { AgentRecord, Cursor, ServiceSource } from '../../agent/sdk/index.ts';
import { driverEnv, problemReporter } from '../../agent/hosting/driver-env.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';
import { oruMessage } from '../helpers/hl7.ts';

const MLLP_SEND = '/usr/bin/mllp_send';
const run = promisify(execFile);

type WorkerMessage = { listening: true } | { committed: string[] } | { duplicates: number };

/** The gateway side: the hl7 source emitting into a real queue; each commit waits for the test's word before its ACK. */
async function worker(): Promise<void> {
  const queue = Queue.open(
    testQueueOptions(join(process.env.QUEUE_DIR!, 'q.db'), {
      maxBytes: 1 << 26,
      maxAgeMs: 86_400_000,
      batchMaxRecords: 1000,
      codec: { compression: 'none', level: undefined },
    }),
  );
  const options = hl7Source.options.parse({ listen: `127.0.0.1:${process.env.PORT}`, dedup_window: Number(process.env.DEDUP_WINDOW) });
  const source = (await hl7Source.create(
    { ...options, type: 'hl7', name: 'lab', stream: 'lab', interval: 1000, on_start_error: 'fail' },
    driverEnv({ log: silentLogger, baseDir: '.' }),
  )) as ServiceSource;
  const send = (m: WorkerMessage) => process.send!(m);
  let duplicates = 0;
  const proceed: (() => void)[] = [];
  process.on('message', () => proceed.shift()?.());
  await source.start({
    name: 'lab',
    log: silentLogger,
    cursor: queue.cursor('lab'),
    signal: new AbortController().signal,
    counters: {
      add(name) {
        if (name === 'duplicates') send({ duplicates: ++duplicates });
      },
    },
    problems: problemReporter(() => ({ add() {} }), silentLogger),
    emit: async (records, cursor?: Cursor, options?) => {
      await queue.enqueue('lab', records, cursor === undefined ? undefined : { source: 'lab', value: cursor }, options?.commitWithinMs);
      const go = new Promise<void>((resolve) => proceed.push(resolve));
      send({ committed: records.map((r) => String(r.control_id)) });
      await go;
    },
    fail: (err) => {
      console.error('source failed', err);
      process.exit(3);
    },
  });
  send({ listening: true });
}

/** Every record committed in the queue file, read from its chunks (the writer is dead). */
function recordsInFile(dir: string): AgentRecord[] {
  const db = new Database(join(dir, 'q.db'), { readonly: true });
  try {
    const rows = db.prepare('SELECT payload FROM chunks ORDER BY rowid').all() as { payload: Buffer }[];
    return rows.flatMap((row) => decodeRecords(row.payload));
  } finally {
    db.close();
  }
}

/** Starts the gateway; SIGKILLs it right after the commit of any message in `killAt` (once each), else lets the ACK go. */
async function startGateway(dir: string, port: number, dedupWindow: number, killAt: Set<string>, state: { duplicates: number }): Promise<ChildProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    env: { ...process.env, HL7_WORKER: '1', QUEUE_DIR: dir, PORT: String(port), DEDUP_WINDOW: String(dedupWindow) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code} before listening`)));
    child.on('message', (m: WorkerMessage) => {
      if ('listening' in m) resolve();
      if ('duplicates' in m) state.duplicates++;
      if ('committed' in m) {
        const victim = m.committed.find((id) => killAt.delete(id));
        if (victim) child.kill('SIGKILL');
        else child.send('go');
      }
    });
  });
  return child;
}

/** Sends the framed messages with mllp_send; returns the control ids answered AA, AE and AR. */
async function mllpSend(port: number, file: string): Promise<Record<'AA' | 'AE' | 'AR', string[]>> {
  const out = await run(MLLP_SEND, ['-p', String(port), '-f', file, '127.0.0.1'], { encoding: 'latin1' }).catch((e: { stdout: string }) => e); // a killed gateway ends it with a broken pipe
  const acks: Record<'AA' | 'AE' | 'AR', string[]> = { AA: [], AE: [], AR: [] };
  for (const m of out.stdout.matchAll(new RegExp(`MSA\\|(AA|AE|AR)\\|([^|\r${String.fromCharCode(0x1c)}]*)`, 'g'))) acks[m[1] as 'AA'].push(m[2]!);
  return acks;
}

async function deliverWithKills(dedupWindow: number, killAt: string[], count: number): Promise<{ inQueue: string[]; duplicates: number; rounds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-hl7-'));
  const port = await freePort();
  const messages = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    const id = `MSG${String(i).padStart(5, '0')}`;
    // One in ten from a Latin-1 system that says so in MSH-18, with names outside ASCII.
    messages.set(
      id,
      i % 10 === 3
        ? Buffer.from(oruMessage({ controlId: id, charset: '8859/1', patientName: 'Müller^Zoë' }), 'latin1')
        : Buffer.from(oruMessage({ controlId: id })),
    );
  }
  const pendingKills = new Set(killAt);
  const state = { duplicates: 0 };
  let rounds = 0;
  try {
    while (messages.size > 0) {
      assert.ok(++rounds <= killAt.length + 3, `still ${messages.size} messages without AA after ${rounds - 1} rounds`);
      const gateway = await startGateway(dir, port, dedupWindow, pendingKills, state);
      const exited = new Promise<void>((resolve) => gateway.once('exit', () => resolve()));
      const file = join(dir, 'outbox.mllp');
      writeFileSync(file, Buffer.concat([...messages.values()].map(mllpFrame)));
      const acks = await mllpSend(port, file);
      assert.deepEqual([acks.AE, acks.AR], [[], []], 'no message refused');
      for (const id of acks.AA) messages.delete(id);
      gateway.kill('SIGKILL');
      await exited;
    }
    const records = recordsInFile(dir);
    // The Latin-1 messages were read in their declared character set.
    for (const r of records.filter((r) => r.charset === '8859/1')) assert.equal((r.patient as { name: { family: string } }).name.family, 'Müller');
    return { inQueue: records.map((r) => String(r.control_id)), duplicates: state.duplicates, rounds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env.HL7_WORKER) {
  await worker();
} else if (!existsSync(MLLP_SEND)) {
  describe('hl7 source with mllp_send', () => {
    it('needs Debian python3-hl7', (t) => t.skip(`${MLLP_SEND} is missing: install python3-hl7 (.ci/run does)`));
  });
} else {
  describe('hl7 source with mllp_send', () => {
    it('every message answered AA is queued exactly once, though the gateway is SIGKILLed between commit and ACK three times', async () => {
      const killAt = ['MSG00007', 'MSG00019', 'MSG00031'];
      const { inQueue, duplicates, rounds } = await deliverWithKills(1000, killAt, 40);
      assert.equal(rounds, 4, 'one round per kill, then the last');
      assert.equal(inQueue.length, 40, 'forty messages queued');
      assert.equal(new Set(inQueue).size, 40, 'none twice');
      assert.equal(duplicates, killAt.length, `each message committed but not acknowledged came again and was recognised`);
    });

    it('with dedup_window: 0 a message sent again after a lost ACK is queued twice (the centre deduplicates by control id)', async () => {
      const { inQueue } = await deliverWithKills(0, ['MSG00004'], 10);
      assert.equal(inQueue.length, 11);
      assert.deepEqual(
        inQueue.filter((id) => id === 'MSG00004'),
        ['MSG00004', 'MSG00004'],
      );
    });

    it('malformed messages are answered AE or AR with the reason; the good ones around them AA', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'edge-hl7-bad-'));
      const port = await freePort();
      const state = { duplicates: 0 };
      const gateway = await startGateway(dir, port, 1000, new Set(), state);
      try {
        const file = join(dir, 'bad.mllp');
        const frames = [
          oruMessage({ controlId: 'GOOD1' }),
          'MSH|^~\\&|LAB|NORTH|EDGE|WARD|20261206||ORU^R01||P|2.5\rPID|1||x\r', // no control id: AE
          'MSH|^~\\&|LAB|NORTH|EDGE|WARD|20261206||ORU^R01|C16|P|2.5||||||UNICODE UTF-16\r', // charset refused: AR
          oruMessage({ controlId: 'GOOD2' }),
        ].map((m) => mllpFrame(Buffer.from(m)));
        writeFileSync(file, Buffer.concat(frames));
        const acks = await mllpSend(port, file);
        assert.deepEqual(acks, { AA: ['GOOD1', 'GOOD2'], AE: [''], AR: ['C16'] });
        const { stdout } = await run(MLLP_SEND, ['-p', String(port), '-f', file, '127.0.0.1'], { encoding: 'latin1' });
        assert.match(stdout, /MSA\|AE\|\|MSH-10 \(message control id\) is empty/);
        assert.match(stdout, /MSA\|AR\|C16\|MSH-18 character set "UNICODE UTF-16" is not one this gateway reads/);
      } finally {
        gateway.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
