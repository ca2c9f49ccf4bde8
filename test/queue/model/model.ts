import { encodeRecords } from '../../../agent/envelope/codec.ts';
import type { Cursor } from '../../../agent/sdk/index.ts';

/**
 * A plain in-memory statement of what the queue promises, written from its documented behaviour rather than
 * from its code: committed records kept per stream in chunks (their byte accounting drives the drop
 * policies), batches as recorded chunk ranges, acks that only count once committed, drops by reason.
 */

export interface TestRecord {
  id: number;
  ts: number;
  p: string;
}

export type DropPolicy = 'drop_oldest' | 'drop_newest';

export interface ModelConfig {
  fullPolicy: DropPolicy;
  maxBytes: number;
  maxAgeMs: number;
  batchMaxRecords: number;
  batchMaxBytes: number;
  commitEveryRecords: number;
  priorities: Readonly<Record<string, number>>;
}

// The queue's per-chunk overhead counted against max_bytes (row header, index entry); part of its contract
// because max_bytes is what operators size the disk with.
export const CHUNK_OVERHEAD = 48;
const DEFAULT_PRIORITY = 50;

export interface ModelChunk {
  id: number;
  records: TestRecord[];
  /** Encoded payload length (compression 'none': the CBOR itself). */
  payloadBytes: number;
  created: number;
}

export interface ModelBatch {
  seq: number;
  firstChunk: number;
  lastChunk: number;
  count: number;
  created: number;
}

export interface ModelStream {
  name: string;
  priority: number;
  /** Creation order in the file: breaks priority ties. */
  order: number;
  nextSeq: number;
  batchedUpto: number;
  chunks: ModelChunk[];
  batches: Map<number, ModelBatch>;
}

interface PendingEmit {
  stream: string;
  records: TestRecord[];
  cursor: { source: string; value: Cursor } | undefined;
}

export type DropCounts = Record<string, Partial<Record<'queue_full' | 'expired' | 'rejected', number>>>;

export const batchKey = (stream: string, seq: number): string => `${stream}:${seq}`;

export function payloadBytes(records: readonly TestRecord[]): number {
  // encodeRecords rewrites big integers in place, so it gets copies.
  return encodeRecords(records.map((r) => ({ ...r }))).length;
}

export class QueueModel {
  readonly config: ModelConfig;
  readonly streams = new Map<string, ModelStream>();
  readonly cursors = new Map<string, Cursor>();
  readonly drops: DropCounts = {};
  pending: PendingEmit[] = [];
  pendingRecords = 0;
  pendingAcks: { stream: string; seq: number }[] = [];
  ackedKeys = new Set<string>();
  /** Records whose emit was committed (kept or dropped since). */
  accepted = 0;
  /** Records removed by a committed ack. */
  delivered = 0;
  private nextChunkId = 1;
  /** Every sequence ever recorded, per stream: none may come back. */
  readonly seqsEverRecorded = new Map<string, Set<number>>();

  constructor(config: ModelConfig) {
    this.config = config;
  }

  enqueue(stream: string, records: TestRecord[], cursor: { source: string; value: Cursor } | undefined): boolean {
    this.pending.push({ stream, records, cursor });
    this.pendingRecords += records.length;
    return this.pendingRecords >= this.config.commitEveryRecords;
  }

  /**
   * A commit's records of a stream, cut in order: a chunk takes the next record while it holds fewer than
   * batchMaxRecords and its CBOR with that record stays within batchMaxBytes.
   */
  private chunk(records: readonly TestRecord[]): TestRecord[][] {
    const out: TestRecord[][] = [];
    let current: TestRecord[] = [];
    for (const record of records) {
      if (current.length > 0 && (current.length === this.config.batchMaxRecords || payloadBytes([...current, record]) > this.config.batchMaxBytes)) {
        out.push(current);
        current = [];
      }
      current.push(record);
    }
    if (current.length > 0) out.push(current);
    return out;
  }

  private streamFor(name: string): ModelStream {
    let s = this.streams.get(name);
    if (!s) {
      s = {
        name,
        priority: this.config.priorities[name] ?? DEFAULT_PRIORITY,
        order: this.streams.size,
        nextSeq: 1,
        batchedUpto: 0,
        chunks: [],
        batches: new Map(),
      };
      this.streams.set(name, s);
    }
    return s;
  }

  totalBytes(): number {
    let n = 0;
    for (const s of this.streams.values()) for (const c of s.chunks) n += c.payloadBytes + CHUNK_OVERHEAD;
    return n;
  }

  totalRecords(): number {
    let n = 0;
    for (const s of this.streams.values()) for (const c of s.chunks) n += c.records.length;
    return n;
  }

  /** Batches handed out and not yet settled (acked, refused, or no longer held by the sender). */
  readonly leased = new Set<string>();
  /** In-flight batches drop_oldest removed: counted only if the sender does not deliver them. */
  readonly deferred = new Map<string, { stream: string; records: number }>();

  /** Records removed while in flight whose fate (delivered or dropped) is not known yet. */
  inFlightRemoved(): number {
    let n = 0;
    for (const d of this.deferred.values()) n += d.records;
    return n;
  }

  private settle(key: string, delivered: boolean): void {
    this.leased.delete(key);
    const drop = this.deferred.get(key);
    if (!drop) return;
    this.deferred.delete(key);
    if (!delivered) this.countDrop(drop.stream, 'queue_full', drop.records);
    else this.delivered += drop.records;
  }

  private countDrop(stream: string, reason: 'queue_full' | 'expired' | 'rejected', records: number): void {
    if (records <= 0) return;
    const map = (this.drops[stream] ??= {});
    map[reason] = (map[reason] ?? 0) + records;
  }

  /** One commit: pending emits (grouped per stream), their cursors, pending acks, then drop_oldest. */
  commit(now: number): void {
    const emits = this.pending;
    const acks = this.pendingAcks;
    this.pending = [];
    this.pendingRecords = 0;
    this.pendingAcks = [];
    const byStream = new Map<string, TestRecord[]>();
    for (const e of emits) {
      const list = byStream.get(e.stream) ?? [];
      list.push(...e.records);
      byStream.set(e.stream, list);
      this.accepted += e.records.length;
    }
    for (const [name, records] of byStream) {
      const stream = this.streamFor(name);
      for (const slice of this.chunk(records)) {
        const bytes = payloadBytes(slice);
        if (this.config.fullPolicy === 'drop_newest' && this.totalBytes() + bytes + CHUNK_OVERHEAD > this.config.maxBytes) {
          this.countDrop(name, 'queue_full', slice.length);
          continue;
        }
        stream.chunks.push({ id: this.nextChunkId++, records: slice, payloadBytes: bytes, created: now });
      }
    }
    for (const e of emits) if (e.cursor) this.cursors.set(e.cursor.source, e.cursor.value);
    for (const ack of acks) {
      const stream = this.streams.get(ack.stream);
      if (stream) this.delivered += this.removeBatch(stream, ack.seq);
      this.ackedKeys.delete(batchKey(ack.stream, ack.seq));
    }
    if (this.config.fullPolicy === 'drop_oldest') {
      while (this.totalBytes() > this.config.maxBytes) {
        const victim = [...this.streams.values()].filter((s) => s.chunks.length > 0).sort((a, b) => a.priority - b.priority || a.order - b.order)[0];
        if (!victim) break;
        this.removeOldest(victim, 'queue_full');
      }
    }
    const demand = this.batchDemand;
    this.batchDemand = 0;
    let made = 0;
    for (const stream of [...this.streams.values()].sort((a, b) => b.priority - a.priority || a.order - b.order)) {
      while (made < demand && stream.chunks.some((c) => c.id > stream.batchedUpto)) made += this.recordFor(stream, demand - made, now).length;
    }
  }

  private removeBatch(stream: ModelStream, seq: number): number {
    const batch = stream.batches.get(seq);
    if (!batch) return 0;
    stream.batches.delete(seq);
    const gone = stream.chunks.filter((c) => c.id >= batch.firstChunk && c.id <= batch.lastChunk);
    stream.chunks = stream.chunks.filter((c) => c.id < batch.firstChunk || c.id > batch.lastChunk);
    return gone.reduce((n, c) => n + c.records.length, 0);
  }

  /** The oldest chunk goes, with the whole recorded batch it belongs to (a re-send never differs from the first send). */
  private removeOldest(stream: ModelStream, reason: 'queue_full' | 'expired'): void {
    const oldest = stream.chunks[0];
    if (!oldest) return;
    const batch = [...stream.batches.values()].find((b) => b.firstChunk <= oldest.id && oldest.id <= b.lastChunk);
    let removed: number;
    if (batch) {
      removed = this.removeBatch(stream, batch.seq);
      const key = batchKey(stream.name, batch.seq);
      if (reason !== 'expired' && this.leased.has(key)) {
        this.deferred.set(key, { stream: stream.name, records: removed });
        return;
      }
    } else {
      stream.chunks.shift();
      removed = oldest.records.length;
    }
    this.countDrop(stream.name, reason, removed);
  }

  expire(now: number): void {
    // As the queue: acknowledgements waiting for their commit are committed first (with whatever else waits),
    // so delivered records are never counted as expired.
    if (this.pendingAcks.length > 0) this.commit(now);
    const cutoff = now - this.config.maxAgeMs;
    for (const stream of this.streams.values()) {
      while (stream.chunks.length > 0 && stream.chunks[0]!.created < cutoff) this.removeOldest(stream, 'expired');
    }
  }

  /**
   * What nextBatch must hand out: a recorded, idle batch of the highest-priority stream first, else new
   * batches — unless records wait for a commit: then nothing, and the next commit records the batches
   * (up to the largest room asked for) inside its own transaction.
   */
  lease(busy: ReadonlySet<string>, room: number, now: number): { stream: string; batch: ModelBatch; isNew: boolean } | undefined {
    for (const key of [...this.leased]) if (!busy.has(key) && !this.ackedKeys.has(key)) this.settle(key, false);
    const got = this.pickLease(busy, room, now);
    if (got) this.leased.add(batchKey(got.stream, got.batch.seq));
    return got;
  }

  private pickLease(busy: ReadonlySet<string>, room: number, now: number): { stream: string; batch: ModelBatch; isNew: boolean } | undefined {
    const ordered = [...this.streams.values()].sort((a, b) => b.priority - a.priority || a.order - b.order);
    for (const stream of ordered) {
      for (const batch of [...stream.batches.values()].sort((a, b) => a.seq - b.seq)) {
        const key = batchKey(stream.name, batch.seq);
        if (!busy.has(key) && !this.ackedKeys.has(key)) return { stream: stream.name, batch, isNew: false };
      }
      if (!stream.chunks.some((c) => c.id > stream.batchedUpto)) continue;
      if (this.pending.length > 0) {
        this.batchDemand = Math.max(this.batchDemand, Math.max(1, room));
        return undefined;
      }
      const made = this.recordFor(stream, Math.max(1, room), now);
      return { stream: stream.name, batch: made[0]!, isNew: true };
    }
    return undefined;
  }

  /** Largest room the sender asked for while a commit was due. */
  batchDemand = 0;

  /** Records up to `max` next batches of `stream` (oldest unbatched chunks first). */
  private recordFor(stream: ModelStream, max: number, now: number): ModelBatch[] {
    const unbatched = stream.chunks.filter((c) => c.id > stream.batchedUpto);
    const made: ModelBatch[] = [];
    let i = 0;
    while (i < unbatched.length && made.length < max) {
      const first = unbatched[i]!.id;
      let count = 0;
      let bytes = 0;
      let last = first;
      for (; i < unbatched.length; i++) {
        const c = unbatched[i]!;
        const alone = Math.max(1, Math.floor(this.config.batchMaxBytes / 64)); // agent/queue/planner.ts mergeBelowBytes
        const big = c.payloadBytes >= alone || (count > 0 && last === first && unbatched[i - 1]!.payloadBytes >= alone);
        if (count > 0 && (big || count + c.records.length > this.config.batchMaxRecords || bytes + c.payloadBytes > this.config.batchMaxBytes)) break;
        count += c.records.length;
        bytes += c.payloadBytes;
        last = c.id;
      }
      made.push({ seq: stream.nextSeq + made.length, firstChunk: first, lastChunk: last, count, created: now });
    }
    if (made.length === 0) return made;
    const seen = this.seqsEverRecorded.get(stream.name) ?? new Set<number>();
    this.seqsEverRecorded.set(stream.name, seen);
    for (const b of made) {
      stream.batches.set(b.seq, b);
      seen.add(b.seq);
    }
    stream.nextSeq = made[made.length - 1]!.seq + 1;
    stream.batchedUpto = made[made.length - 1]!.lastChunk;
    return made;
  }

  recordsOf(stream: string, batch: ModelBatch): TestRecord[] {
    const s = this.streams.get(stream);
    if (!s) return [];
    return s.chunks.filter((c) => c.id >= batch.firstChunk && c.id <= batch.lastChunk).flatMap((c) => c.records);
  }

  ack(stream: string, seq: number): void {
    this.settle(batchKey(stream, seq), true);
    if (!this.streams.has(stream)) return;
    this.ackedKeys.add(batchKey(stream, seq));
    this.pendingAcks.push({ stream, seq });
  }

  /** A refused batch is set aside at once (its own transaction), counted as rejected. */
  reject(stream: string, seq: number): void {
    this.settle(batchKey(stream, seq), false);
    const s = this.streams.get(stream);
    if (!s) return;
    this.countDrop(stream, 'rejected', this.removeBatch(s, seq));
  }

  /** A clean close commits what waits; acknowledgement marks die with the process. */
  reopen(now: number): void {
    // Still in flight at the stop: whether the sink took them is unknown, so the removed ones count.
    for (const key of [...this.leased]) this.settle(key, false);
    this.commit(now);
    this.ackedKeys.clear();
    this.expire(now);
  }

  /** A crash loses what was not committed: waiting emits and acknowledgements. */
  crash(now: number): void {
    // The process's memory is gone: removed in-flight batches it had not yet counted are never counted.
    this.leased.clear();
    this.deferred.clear();
    this.pending = [];
    this.pendingRecords = 0;
    this.pendingAcks = [];
    this.batchDemand = 0;
    this.ackedKeys.clear();
    this.expire(now);
  }
}
