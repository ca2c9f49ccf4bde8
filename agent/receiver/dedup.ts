import { closeSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { openDatabase } from '../util/sqlite.ts';
import { AgentError } from '../errors.ts';
import { makeDirs } from '../util/make-dirs.ts';

/** `stream_limit`: the device already has `maxStreams` streams and this batch would start another. */
export type Verdict = 'new' | 'duplicate' | 'stale' | 'stream_limit';

export interface DedupLimits {
  /** Queue epochs remembered per (device, stream); the oldest seen is forgotten beyond this. */
  epochs: number;
  /** Streams remembered per device; batches of a further stream are refused. */
  streamsPerDevice: number;
  /** An epoch with no batch taken for this long (ms) is forgotten like one beyond `epochs` (receiver.dedup_retention). */
  retentionMs: number;
}

const DEFAULT_LIMITS: DedupLimits = { epochs: 8, streamsPerDevice: 1000, retentionMs: 30 * 86_400_000 };
/** Idle epochs are looked for at most this often (and at open). */
const IDLE_CHECK_MS = 3_600_000;
const SCHEMA_VERSION = 1;

/**
 * Which batches the centre has already taken, by (device, stream, queue epoch, sequence), in its own SQLite file.
 *
 * Bounded three ways, so the state is at most devices × streamsPerDevice × epochs × window rows:
 * - Sequences more than `window` below the highest seen for an epoch are refused as stale replays.
 * - Per (device, stream) the newest `epochs` epochs (by when the receiver first saw them) are kept. When one
 *   more arrives, the oldest is forgotten, and the newest creation time of any batch it held becomes the
 *   stream's floor: a batch of an epoch not remembered, created at or before the floor, is refused as stale.
 *   Every batch ever accepted from a forgotten epoch lies at or below the floor, so none is accepted twice;
 *   a batch created after it was never accepted (it would have raised the floor) and may be taken.
 * - A device's batches on a stream beyond `streamsPerDevice` are refused, never accepted.
 * - An epoch with no batch taken for `retentionMs` is forgotten the same way (its marks deleted, the floor
 *   raised), looked for at open and then at most hourly: a replaced gateway's old epochs do not stay for ever.
 */
export class DedupState {
  private readonly db: Database.Database;
  private readonly highest = new Map<string, number>();
  /** Remembered epochs per (device, stream), oldest first. */
  private readonly epochs = new Map<string, string[]>();
  private readonly streams = new Map<string, Set<string>>();
  private readonly floors = new Map<string, number>();
  private readonly stmt;
  private marks = 0;
  private readonly window: number;
  private readonly limits: DedupLimits;
  private readonly markTx: (device: string, stream: string, epoch: string, seq: number, records: number, created: number) => void;

  constructor(path: string, window: number, limits: Partial<DedupLimits> = {}) {
    this.window = window;
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    try {
      // Private to the receiver: the directory 0700 when it is created here, the file (and so SQLite's
      // -wal and -shm, which take the database's mode) 0600.
      makeDirs(dirname(path));
      closeSync(openSync(path, 'a', 0o600));
      this.db = openDatabase(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.exec(`CREATE TABLE IF NOT EXISTS seen (device TEXT NOT NULL, stream TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL,
                      records INTEGER NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (device, stream, epoch, seq)) WITHOUT ROWID`);
      if ((this.db.pragma('user_version', { simple: true }) as number) < SCHEMA_VERSION) this.migrate();
    } catch (cause) {
      throw new AgentError('QUEUE_OPEN_FAILED', `cannot open receiver state ${path}`, { cause });
    }
    for (const row of this.db.prepare('SELECT device, stream, epoch, max(seq) AS seq FROM seen GROUP BY device, stream, epoch').all() as {
      device: string;
      stream: string;
      epoch: string;
      seq: number;
    }[]) {
      this.highest.set(`${row.device}\u0000${row.stream}\u0000${row.epoch}`, row.seq);
    }
    for (const row of this.db.prepare('SELECT device, stream, epoch FROM epochs ORDER BY rowid').all() as { device: string; stream: string; epoch: string }[]) {
      this.remember(row.device, row.stream, row.epoch);
    }
    for (const row of this.db.prepare('SELECT device, stream, created FROM floors').all() as { device: string; stream: string; created: number }[]) {
      this.floors.set(`${row.device}\u0000${row.stream}`, row.created);
    }
    this.stmt = {
      has: this.db.prepare('SELECT 1 FROM seen WHERE device = ? AND stream = ? AND epoch = ? AND seq = ?').pluck(),
      insert: this.db.prepare('INSERT INTO seen (device, stream, epoch, seq, records, at) VALUES (?, ?, ?, ?, ?, ?)'),
      prune: this.db.prepare('DELETE FROM seen WHERE device = ? AND stream = ? AND epoch = ? AND seq < ?'),
      addEpoch: this.db.prepare('INSERT INTO epochs (device, stream, epoch, max_created) VALUES (?, ?, ?, ?)'),
      raiseEpoch: this.db.prepare('UPDATE epochs SET max_created = max(max_created, ?) WHERE device = ? AND stream = ? AND epoch = ?'),
      epochCreated: this.db.prepare('SELECT max_created FROM epochs WHERE device = ? AND stream = ? AND epoch = ?').pluck(),
      dropEpoch: this.db.prepare('DELETE FROM epochs WHERE device = ? AND stream = ? AND epoch = ?'),
      dropSeen: this.db.prepare('DELETE FROM seen WHERE device = ? AND stream = ? AND epoch = ?'),
      setFloor: this.db.prepare(
        'INSERT INTO floors (device, stream, created) VALUES (?, ?, ?) ON CONFLICT (device, stream) DO UPDATE SET created = max(created, excluded.created)',
      ),
    };
    this.markTx = this.db.transaction((device, stream, epoch, seq, records, created) => this.markNow(device, stream, epoch, seq, records, created));
    this.pruneIdle();
  }

  private idleCheckedAt = 0;

  /** Forgets every epoch with no batch taken since `now - retentionMs`; returns how many. */
  pruneIdle(now = Date.now()): number {
    this.idleCheckedAt = now;
    const idle = this.db
      .prepare(
        `SELECT e.device, e.stream, e.epoch FROM epochs e
          WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.device = e.device AND s.stream = e.stream AND s.epoch = e.epoch AND s.at >= ?)`,
      )
      .all(now - this.limits.retentionMs) as { device: string; stream: string; epoch: string }[];
    this.db.transaction(() => {
      for (const { device, stream, epoch } of idle) {
        this.forget(device, stream, epoch);
        const key = `${device}\u0000${stream}`;
        const list = this.epochs.get(key)?.filter((e) => e !== epoch) ?? [];
        if (list.length > 0) this.epochs.set(key, list);
        else {
          this.epochs.delete(key);
          this.streams.get(device)?.delete(stream);
        }
      }
    })();
    return idle.length;
  }

  /**
   * Version 1 adds the epochs (in the order first seen) and the floors. A file from before knows no creation
   * times: an epoch's newest receive time stands in (a batch is created before it is received).
   */
  private migrate(): void {
    this.db.exec(`CREATE TABLE IF NOT EXISTS epochs (device TEXT NOT NULL, stream TEXT NOT NULL, epoch TEXT NOT NULL, max_created INTEGER NOT NULL,
                    UNIQUE (device, stream, epoch));
                  CREATE TABLE IF NOT EXISTS floors (device TEXT NOT NULL, stream TEXT NOT NULL, created INTEGER NOT NULL, PRIMARY KEY (device, stream)) WITHOUT ROWID;
                  INSERT OR IGNORE INTO epochs (device, stream, epoch, max_created)
                    SELECT device, stream, epoch, max(at) FROM seen GROUP BY device, stream, epoch ORDER BY min(at);
                  PRAGMA user_version = ${SCHEMA_VERSION};`);
  }

  private remember(device: string, stream: string, epoch: string): void {
    const key = `${device}\u0000${stream}`;
    let list = this.epochs.get(key);
    if (!list) {
      list = [];
      this.epochs.set(key, list);
      let set = this.streams.get(device);
      if (!set) this.streams.set(device, (set = new Set()));
      set.add(stream);
    }
    list.push(epoch);
  }

  /** `epoch` is the queue epoch in hex: sequences are unique within (device, stream, epoch). `created` is the header's. */
  check(device: string, stream: string, epoch: string, seq: number, created = Date.now()): Verdict {
    const high = this.highest.get(`${device}\u0000${stream}\u0000${epoch}`);
    if (high !== undefined) {
      if (seq <= high - this.window) return 'stale';
      return this.stmt.has.get(device, stream, epoch, seq) ? 'duplicate' : 'new';
    }
    // An epoch not remembered: new, or one forgotten (then everything it had accepted is at or below the floor).
    if (!this.epochs.has(`${device}\u0000${stream}`) && (this.streams.get(device)?.size ?? 0) >= this.limits.streamsPerDevice) return 'stream_limit';
    const floor = this.floors.get(`${device}\u0000${stream}`);
    return floor !== undefined && created <= floor ? 'stale' : 'new';
  }

  mark(device: string, stream: string, epoch: string, seq: number, records: number, created = Date.now()): void {
    this.markTx(device, stream, epoch, seq, records, created);
  }

  private markNow(device: string, stream: string, epoch: string, seq: number, records: number, created: number): void {
    const key = `${device}\u0000${stream}\u0000${epoch}`;
    this.stmt.insert.run(device, stream, epoch, seq, records, Date.now());
    const high = this.highest.get(key);
    if (high === undefined) {
      this.stmt.addEpoch.run(device, stream, epoch, created);
      this.remember(device, stream, epoch);
      const list = this.epochs.get(`${device}\u0000${stream}`)!;
      while (list.length > this.limits.epochs) this.forget(device, stream, list.shift()!);
    } else {
      this.stmt.raiseEpoch.run(created, device, stream, epoch);
    }
    if (high === undefined || seq > high) this.highest.set(key, seq);
    if (++this.marks % 1000 === 0) this.stmt.prune.run(device, stream, epoch, (this.highest.get(key) ?? 0) - this.window);
    if (Date.now() - this.idleCheckedAt > Math.min(IDLE_CHECK_MS, this.limits.retentionMs)) this.pruneIdle();
  }

  private forget(device: string, stream: string, epoch: string): void {
    const created = this.stmt.epochCreated.get(device, stream, epoch) as number | undefined;
    if (created !== undefined) {
      this.stmt.setFloor.run(device, stream, created);
      const key = `${device}\u0000${stream}`;
      this.floors.set(key, Math.max(this.floors.get(key) ?? created, created));
    }
    this.stmt.dropSeen.run(device, stream, epoch);
    this.stmt.dropEpoch.run(device, stream, epoch);
    this.highest.delete(`${device}\u0000${stream}\u0000${epoch}`);
  }

  /** Remembered (device, stream, epoch) triples and rows: what the limits bound. */
  size(): { epochs: number; rows: number } {
    return { epochs: this.highest.size, rows: this.db.prepare('SELECT count(*) FROM seen').pluck().get() as number };
  }

  close(): void {
    this.db.close();
  }
}
