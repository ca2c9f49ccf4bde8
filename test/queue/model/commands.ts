import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Cursor } from '../../../agent/sdk/index.ts';
import { batchKey, type TestRecord } from './model.ts';
import { assertMatchesModel, bodyRecords, watch, type ModelWorld, type RealWorld, type WatchedEmit } from './system.ts';

type QueueCommand = fc.AsyncCommand<ModelWorld, RealWorld>;

export const STREAMS = ['alarms', 'telemetry', 'logs'] as const;
export const CURSOR_SOURCES = ['src-a', 'src-b'] as const;
const TS_BASE = 1_700_000_000_000;

/** Lets already-due callbacks run, so a promise that should not have settled yet would have had the chance. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Waits for the emits to settle, failing (instead of hanging) if a commit that is due never comes. */
async function committed(waiting: readonly WatchedEmit[], what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: emits not settled within 10 s`)), 10_000)));
  try {
    await Promise.race([Promise.all(waiting.map((w) => w.done)), deadline]);
  } finally {
    clearTimeout(timer);
  }
  for (const w of waiting) assert.equal(w.settled, 'resolved', `${what}: emit failed: ${String(w.error)}`);
}

/** Cursor values of different JSON shapes, derived from the last id so each one is distinct. */
function cursorValue(source: string, lastId: number): Cursor {
  return source === 'src-a' ? lastId : { upto: lastId, note: `after-${lastId}` };
}

class EnqueueCommand implements QueueCommand {
  readonly stream: string;
  readonly payloads: string[];
  readonly cursorSource: string | undefined;
  constructor(stream: string, payloads: string[], cursorSource: string | undefined) {
    this.stream = stream;
    this.payloads = payloads;
    this.cursorSource = cursorSource;
  }
  check(): boolean {
    return true;
  }
  async run(m: ModelWorld, r: RealWorld): Promise<void> {
    const records: TestRecord[] = this.payloads.map((p) => {
      const id = m.nextId++;
      return { id, ts: TS_BASE + id, p };
    });
    const cursor = this.cursorSource ? { source: this.cursorSource, value: cursorValue(this.cursorSource, m.nextId - 1) } : undefined;
    const commitDue = m.model.enqueue(
      this.stream,
      records.map((x) => ({ ...x })),
      cursor,
    );
    r.waiting.push(
      watch(
        r.queue.enqueue(
          this.stream,
          records.map((x) => ({ ...x })),
          cursor,
        ),
      ),
    );
    if (commitDue) {
      // Reaching commitEveryRecords commits at once (next turn of the event loop): every waiting emit resolves.
      const waiting = r.waiting;
      r.waiting = [];
      await committed(waiting, 'commit_every_records reached');
      m.model.commit(m.now);
    } else {
      await settle();
      for (const w of r.waiting) assert.equal(w.settled, 'no', 'an emit resolved before its commit was due');
    }
    assertMatchesModel(m, r);
  }
  toString(): string {
    return `Enqueue(${this.stream}, ${this.payloads.length} records${this.cursorSource ? `, cursor ${this.cursorSource}` : ''})`;
  }
}

class FlushCommand implements QueueCommand {
  check(): boolean {
    return true;
  }
  async run(m: ModelWorld, r: RealWorld): Promise<void> {
    const waiting = r.waiting;
    r.waiting = [];
    await r.queue.flush();
    await committed(waiting, 'flush');
    m.model.commit(m.now);
    assertMatchesModel(m, r);
  }
  toString(): string {
    return 'Flush';
  }
}

class LeaseCommand implements QueueCommand {
  readonly room: number;
  constructor(room: number) {
    this.room = room;
  }
  check(): boolean {
    return true;
  }
  async run(m: ModelWorld, r: RealWorld): Promise<void> {
    const busy = r.busy();
    const everBefore = new Map([...m.model.seqsEverRecorded].map(([s, seqs]) => [s, new Set(seqs)]));
    const expected = m.model.lease(busy, this.room, m.now);
    const batch = r.queue.nextBatch(busy, this.room);
    if (!expected) {
      assert.equal(batch, undefined, `nextBatch handed out ${batch?.key} although the model has nothing idle to send`);
    } else {
      assert.ok(batch, `nextBatch returned nothing; expected ${expected.stream}:${expected.batch.seq}`);
      assert.equal(batch.stream, expected.stream, 'a lease takes the highest-priority stream with idle data');
      if (expected.isNew) {
        const seen = everBefore.get(batch.stream) ?? new Set<number>();
        assert.ok(!seen.has(batch.seq), `sequence ${batch.seq} of ${batch.stream} was used before`);
        assert.ok(
          [...seen].every((s) => s < batch.seq),
          `sequence ${batch.seq} of ${batch.stream} is not above all earlier ones`,
        );
      }
      assert.equal(batch.seq, expected.batch.seq, 'batch sequence');
      assert.equal(batch.key, batchKey(batch.stream, batch.seq));
      assert.equal(batch.count, expected.batch.count, 'batch record count');
      assert.equal(batch.created, expected.batch.created, 'a re-sent batch keeps its creation time');
      assert.deepEqual(bodyRecords(batch), m.model.recordsOf(expected.stream, expected.batch), `records of ${batch.key}`);
      r.leases.push(batch);
      m.leases.push({ stream: batch.stream, seq: batch.seq });
    }
    assertMatchesModel(m, r);
  }
  toString(): string {
    return `Lease(room ${this.room})`;
  }
}

type LeaseOutcome = 'ack' | 'nack' | 'reject';

class SettleLeaseCommand implements QueueCommand {
  readonly outcome: LeaseOutcome;
  readonly pick: number;
  constructor(outcome: LeaseOutcome, pick: number) {
    this.outcome = outcome;
    this.pick = pick;
  }
  check(m: Readonly<ModelWorld>): boolean {
    return m.leases.length > 0;
  }
  async run(m: ModelWorld, r: RealWorld): Promise<void> {
    const i = this.pick % m.leases.length;
    const [held] = m.leases.splice(i, 1);
    const [batch] = r.leases.splice(i, 1);
    assert.ok(held && batch);
    if (this.outcome === 'ack') {
      r.queue.ack(batch);
      m.model.ack(held.stream, held.seq);
    } else if (this.outcome === 'reject') {
      r.queue.reject(batch);
      m.model.reject(held.stream, held.seq);
    }
    assertMatchesModel(m, r);
  }
  toString(): string {
    return `${this.outcome[0]!.toUpperCase()}${this.outcome.slice(1)}(lease #${this.pick})`;
  }
}

class AdvanceClockCommand implements QueueCommand {
  readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
  check(): boolean {
    return true;
  }
  async run(m: ModelWorld, r: RealWorld): Promise<void> {
    m.now += this.ms;
    r.clock.now = m.now;
    // Acks waiting for their commit make expire commit first, and that commit takes the waiting emits too.
    const commitsFirst = m.model.pendingAcks.length > 0;
    r.queue.expire();
    m.model.expire(m.now);
    if (commitsFirst) {
      const waiting = r.waiting;
      r.waiting = [];
      await committed(waiting, 'expire commits waiting acknowledgements first');
    }
    assertMatchesModel(m, r);
  }
  toString(): string {
    return `AdvanceClockAndExpire(${this.ms} ms)`;
  }
}

class ReopenCommand implements QueueCommand {
  check(): boolean {
    return true;
  }
  async run(m: ModelWorld, r: RealWorld): Promise<void> {
    await r.reopen();
    m.leases = [];
    m.model.reopen(m.now);
    assertMatchesModel(m, r);
  }
  toString(): string {
    return 'Reopen';
  }
}

class CrashCommand implements QueueCommand {
  check(): boolean {
    return true;
  }
  async run(m: ModelWorld, r: RealWorld): Promise<void> {
    await r.crash();
    m.leases = [];
    m.model.crash(m.now);
    assertMatchesModel(m, r);
  }
  toString(): string {
    return 'Crash';
  }
}

const payloads = fc.array(fc.string({ maxLength: 24 }), { minLength: 0, maxLength: 6 });
const enqueue = fc
  .tuple(fc.constantFrom(...STREAMS), payloads, fc.option(fc.constantFrom(...CURSOR_SOURCES), { nil: undefined }))
  .map(([stream, p, cursor]): QueueCommand => new EnqueueCommand(stream, p, cursor));

/** Weighted so that runs build up data and leases before a reopen, a crash or a long clock jump clears them. */
export const queueCommand: fc.Arbitrary<QueueCommand> = fc.oneof(
  { arbitrary: enqueue, weight: 8 },
  { arbitrary: fc.constant<QueueCommand>(new FlushCommand()), weight: 3 },
  { arbitrary: fc.integer({ min: 1, max: 3 }).map((room): QueueCommand => new LeaseCommand(room)), weight: 6 },
  { arbitrary: fc.nat(7).map((i): QueueCommand => new SettleLeaseCommand('ack', i)), weight: 4 },
  { arbitrary: fc.nat(7).map((i): QueueCommand => new SettleLeaseCommand('nack', i)), weight: 2 },
  { arbitrary: fc.nat(7).map((i): QueueCommand => new SettleLeaseCommand('reject', i)), weight: 1 },
  { arbitrary: fc.constantFrom(1_000, 20_000, 45_000).map((ms): QueueCommand => new AdvanceClockCommand(ms)), weight: 2 },
  { arbitrary: fc.constant<QueueCommand>(new AdvanceClockCommand(61_000)), weight: 1 },
  { arbitrary: fc.constant<QueueCommand>(new ReopenCommand()), weight: 1 },
  { arbitrary: fc.constant<QueueCommand>(new CrashCommand()), weight: 1 },
);
