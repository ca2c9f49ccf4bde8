import assert from 'node:assert/strict';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Queue, type LeasedBatch, type QueueOptions } from '../../../agent/queue/queue.ts';
import { compressionFromId, decodeRecords, decompress } from '../../../agent/envelope/codec.ts';
import { silentLogger } from '../../../agent/log.ts';
import type { AgentRecord } from '../../../agent/sdk/index.ts';
import { batchKey, CHUNK_OVERHEAD, type ModelConfig, type QueueModel, type TestRecord } from './model.ts';

/** The model side of a run: the model plus what the test itself knows (clock, ids handed out, leases held). */
export interface ModelWorld {
  model: QueueModel;
  now: number;
  nextId: number;
  leases: { stream: string; seq: number }[];
}

/** An enqueue promise, watched so the test can tell whether it settled (and how) without awaiting it. */
export interface WatchedEmit {
  settled: 'no' | 'resolved' | 'rejected';
  error: unknown;
  done: Promise<void>;
}

export function watch(promise: Promise<void>): WatchedEmit {
  const w: WatchedEmit = { settled: 'no', error: undefined, done: Promise.resolve() };
  w.done = promise.then(
    () => void (w.settled = 'resolved'),
    (err: unknown) => {
      w.settled = 'rejected';
      w.error = err;
    },
  );
  return w;
}

/** The real side: the queue under test, its file, the leases the test holds and the emits not yet committed. */
export class RealWorld {
  queue: Queue;
  readonly dir: string;
  path: string;
  private generation = 0;
  readonly clock: { now: number };
  readonly options: QueueOptions;
  leases: LeasedBatch[] = [];
  waiting: WatchedEmit[] = [];

  constructor(dir: string, config: ModelConfig, now: number) {
    this.dir = dir;
    this.path = join(dir, 'q-0.db');
    this.clock = { now };
    this.options = {
      path: this.path,
      synchronous: 'normal',
      commitEveryRecords: config.commitEveryRecords,
      // Time-driven commits would make the run depend on the wall clock: commits here come from flush(),
      // from reaching commitEveryRecords, or from close().
      commitIntervalMs: 3_600_000,
      maxBytes: config.maxBytes,
      maxAgeMs: config.maxAgeMs,
      fullPolicy: config.fullPolicy,
      cacheBytes: 1 << 20,
      batchMaxRecords: config.batchMaxRecords,
      batchMaxBytes: config.batchMaxBytes,
      // 'none' keeps stored sizes equal to the CBOR, so the model can account bytes exactly.
      codec: { compression: 'none', level: undefined },
      priorities: config.priorities,
      log: silentLogger,
      now: () => this.clock.now,
    };
    this.queue = Queue.open(this.options);
  }

  busy(): Set<string> {
    return new Set(this.leases.map((l) => l.key));
  }

  /** Clean stop and start on the same file. */
  async reopen(): Promise<void> {
    this.queue.close();
    this.leases = [];
    const waiting = this.waiting;
    this.waiting = [];
    await Promise.all(waiting.map((w) => w.done));
    for (const w of waiting) assert.equal(w.settled, 'resolved', `an emit waiting at close must be committed by close(): ${String(w.error)}`);
    this.queue = Queue.open({ ...this.options, path: this.path });
  }

  /**
   * A process crash, in process: the file and its WAL are copied while no transaction is open (exactly what
   * a killed process leaves on disk), the old queue is closed (its late commit goes to the abandoned file)
   * and the copy is opened.
   */
  async crash(): Promise<void> {
    const next = join(this.dir, `q-${++this.generation}.db`);
    copyFileSync(this.path, next);
    if (existsSync(`${this.path}-wal`)) copyFileSync(`${this.path}-wal`, `${next}-wal`);
    this.queue.close();
    await Promise.all(this.waiting.map((w) => w.done));
    this.waiting = [];
    this.leases = [];
    this.path = next;
    this.queue = Queue.open({ ...this.options, path: next });
  }

  close(): void {
    this.queue.close();
  }
}

export const bodyRecords = (b: LeasedBatch): AgentRecord[] => decodeRecords(decompress(b.body, b.compression, 1 << 26));

const plain = (records: readonly TestRecord[]) => records.map((r) => ({ id: r.id, ts: r.ts, p: r.p }));

interface StoredState {
  streams: { name: string; nextSeq: number; chunks: { id: number; created: number; count: number; records: AgentRecord[] }[] }[];
  batches: { stream: string; seq: number; firstChunk: number; lastChunk: number; count: number; created: number }[];
  cursors: Record<string, unknown>;
  drops: Record<string, Record<string, number>>;
}

/** Reads what is committed in the queue file, through a separate connection (what a restart would find). */
export function readStored(path: string): StoredState {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const streamRows = db.prepare('SELECT id, name, next_seq FROM streams ORDER BY id').all() as { id: number; name: string; next_seq: number }[];
    const chunkRows = db.prepare('SELECT id, stream_id, count, created, codec, payload FROM chunks ORDER BY id').all() as {
      id: number;
      stream_id: number;
      count: number;
      created: number;
      codec: number;
      payload: Buffer;
    }[];
    const names = new Map(streamRows.map((s) => [s.id, s.name]));
    const streams = streamRows.map((s) => ({
      name: s.name,
      nextSeq: s.next_seq,
      chunks: chunkRows
        .filter((c) => c.stream_id === s.id)
        .map((c) => ({
          id: c.id,
          created: c.created,
          count: c.count,
          records: decodeRecords(decompress(c.payload, compressionFromId(c.codec) ?? 'none', 1 << 26)),
        })),
    }));
    const batches = (
      db.prepare('SELECT stream_id, seq, first_chunk, last_chunk, count, created FROM batches ORDER BY stream_id, seq').all() as {
        stream_id: number;
        seq: number;
        first_chunk: number;
        last_chunk: number;
        count: number;
        created: number;
      }[]
    ).map((b) => ({
      stream: names.get(b.stream_id) ?? `?${b.stream_id}`,
      seq: b.seq,
      firstChunk: b.first_chunk,
      lastChunk: b.last_chunk,
      count: b.count,
      created: b.created,
    }));
    const cursors: Record<string, unknown> = {};
    for (const c of db.prepare('SELECT source, value FROM cursors').all() as { source: string; value: string }[]) cursors[c.source] = JSON.parse(c.value);
    const drops: Record<string, Record<string, number>> = {};
    for (const d of db.prepare('SELECT stream, reason, records FROM drops').all() as { stream: string; reason: string; records: number }[]) {
      if (d.records > 0) (drops[d.stream] ??= {})[d.reason] = d.records;
    }
    return { streams, batches, cursors, drops };
  } finally {
    db.close();
  }
}

/** Everything observable about the queue must equal the model after every command. */
export function assertMatchesModel(m: ModelWorld, r: RealWorld): void {
  const model = m.model;
  const stored = readStored(r.path);
  const streamNames = [...model.streams.keys()].sort();
  assert.deepEqual(stored.streams.map((s) => s.name).sort(), streamNames, 'streams in the file');
  for (const s of stored.streams) {
    const ms = model.streams.get(s.name)!;
    assert.deepEqual(
      s.chunks.map((c) => ({ id: c.id, created: c.created, count: c.count, records: c.records })),
      ms.chunks.map((c) => ({ id: c.id, created: c.created, count: c.records.length, records: plain(c.records) })),
      `committed records of stream ${s.name} (by id, in order)`,
    );
    assert.equal(s.nextSeq, ms.nextSeq, `next batch sequence of ${s.name} in the file`);
  }
  const modelBatches = [...model.streams.values()]
    .flatMap((s) => [...s.batches.values()].map((b) => ({ stream: s.name, ...b })))
    .sort((a, b) => a.stream.localeCompare(b.stream) || a.seq - b.seq);
  assert.deepEqual(
    [...stored.batches].sort((a, b) => a.stream.localeCompare(b.stream) || a.seq - b.seq),
    modelBatches,
    'recorded, unacknowledged batches in the file',
  );
  assert.deepEqual(stored.cursors, Object.fromEntries(model.cursors), 'committed cursors in the file');
  for (const [source, value] of model.cursors) assert.deepEqual(r.queue.cursor(source), value, `cursor(${source})`);
  assert.deepEqual(stored.drops, model.drops, 'drop counters in the file');

  const stats = r.queue.stats();
  assert.deepEqual(stats.drops, model.drops, 'drop counters by stream and reason');
  assert.equal(stats.records, model.totalRecords(), 'stats().records');
  assert.equal(stats.bytes, model.totalBytes(), 'stats().bytes (payload + per-chunk overhead)');
  for (const [name, ms] of model.streams) {
    const st = stats.streams[name];
    assert.ok(st, `stats() lists stream ${name}`);
    assert.equal(
      st.records,
      ms.chunks.reduce((n, c) => n + c.records.length, 0),
      `stats().streams.${name}.records`,
    );
    assert.equal(
      st.bytes,
      ms.chunks.reduce((n, c) => n + c.payloadBytes + CHUNK_OVERHEAD, 0),
      `stats().streams.${name}.bytes`,
    );
    assert.equal(st.pendingBatches, ms.batches.size, `stats().streams.${name}.pendingBatches`);
    assert.equal(st.nextSeq, ms.nextSeq, `stats().streams.${name}.nextSeq`);
  }

  // Stated directly as well, so a failure names the broken promise and not just a differing number.
  assert.ok(stats.bytes <= model.config.maxBytes, `kept bytes ${stats.bytes} exceed max_bytes ${model.config.maxBytes}`);
  let dropped = 0;
  for (const byReason of Object.values(stats.drops)) for (const n of Object.values(byReason)) dropped += n ?? 0;
  assert.equal(
    stats.records + dropped + model.delivered + model.inFlightRemoved(),
    model.accepted,
    'kept + dropped + delivered + removed while in flight (not yet settled) = accepted',
  );
  assert.deepEqual(
    r.leases.map((l) => l.key),
    m.leases.map((l) => batchKey(l.stream, l.seq)),
    'leases held',
  );
}
