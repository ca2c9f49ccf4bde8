/**
 * The receiver's dead-letter store: batches it authenticated but cannot output (a record its output cannot
 * serialise, a batch over one of its limits, an output error that outlasted its retries) are set aside here
 * with the reason, so the broker can be acknowledged and every other device's batches keep flowing. The
 * operator lists, shows and replays them (`edge-agent dead-letter …`, docs/operations.md).
 *
 * What is kept is the envelope as it arrived, still encrypted: the store holds no plaintext, and a replay
 * goes through authentication, decryption and the (possibly raised) limits again.
 *
 * One SQLite file of its own (0600, in a 0700 directory), bounded by bytes: when a new batch would exceed
 * `maxBytes`, the oldest entries are dropped, counted and logged. A batch larger than the whole bound is not
 * kept at all (counted the same way), never blocking the receiver.
 */
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { AgentError } from '../errors.ts';
import { openPrivateDatabase } from '../util/sqlite.ts';
import { makeDirs } from '../util/make-dirs.ts';

export interface DeadLetterEntry {
  id: number;
  /** When it was set aside (ms since the epoch). */
  at: number;
  device: string;
  stream: string;
  /** Queue epoch, 16 hex digits. */
  epoch: string;
  seq: number;
  records: number;
  /** Where it came from (the topic). */
  origin: string;
  /** Stable code: the AgentError code, with the malformed reason when there is one (`ENVELOPE_MALFORMED/too-deep`). */
  reason: string;
  /** The error, for people. */
  message: string;
  /** Replays tried and failed so far. */
  attempts: number;
  bytes: number;
}

export interface DeadLetterBatch {
  device: string;
  stream: string;
  epoch: string;
  seq: number;
  records: number;
  origin: string;
  reason: string;
  message: string;
  envelope: Uint8Array;
}

export interface AddOutcome {
  id: number | undefined;
  /** Older entries dropped to make room (or 1 for this one, when it alone exceeds the bound). */
  dropped: number;
}

export const DEFAULT_DEAD_LETTER_MAX_BYTES = 256 * 1024 * 1024;
const MAX_MESSAGE_CHARS = 2000;

export class DeadLetterStore {
  private readonly db: Database.Database;
  private readonly maxBytes: number;
  private readonly stmt;
  readonly path: string;

  constructor(path: string, maxBytes = DEFAULT_DEAD_LETTER_MAX_BYTES) {
    this.path = path;
    this.maxBytes = maxBytes;
    try {
      makeDirs(dirname(path));
      this.db = openPrivateDatabase(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      // AUTOINCREMENT: an id the operator saw in `list` never names another batch later.
      this.db.exec(`CREATE TABLE IF NOT EXISTS dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, device TEXT NOT NULL, stream TEXT NOT NULL, epoch TEXT NOT NULL,
        seq INTEGER NOT NULL, records INTEGER NOT NULL, origin TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL, envelope BLOB NOT NULL)`);
    } catch (cause) {
      throw new AgentError('QUEUE_OPEN_FAILED', `cannot open the receiver's dead-letter store ${path}`, { cause });
    }
    const columns = 'id, at, device, stream, epoch, seq, records, origin, reason, message, attempts, bytes';
    this.stmt = {
      insert: this.db.prepare(
        `INSERT INTO dead_letters (at, device, stream, epoch, seq, records, origin, reason, message, bytes, envelope)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      total: this.db.prepare('SELECT coalesce(sum(bytes), 0) FROM dead_letters').pluck(),
      oldest: this.db.prepare('SELECT id, bytes FROM dead_letters ORDER BY id LIMIT 1'),
      remove: this.db.prepare('DELETE FROM dead_letters WHERE id = ?'),
      list: this.db.prepare(`SELECT ${columns} FROM dead_letters ORDER BY id`),
      get: this.db.prepare(`SELECT ${columns} FROM dead_letters WHERE id = ?`),
      envelope: this.db.prepare('SELECT envelope FROM dead_letters WHERE id = ?').pluck(),
      failedAgain: this.db.prepare('UPDATE dead_letters SET attempts = attempts + 1, reason = ?, message = ? WHERE id = ?'),
      count: this.db.prepare('SELECT count(*) FROM dead_letters').pluck(),
    };
  }

  /** Sets a batch aside durably (on disk when this returns); drops the oldest entries if the bound needs it. */
  add(batch: DeadLetterBatch, now = Date.now()): AddOutcome {
    const size = batch.envelope.length;
    if (size > this.maxBytes) return { id: undefined, dropped: 1 };
    return this.db.transaction((): AddOutcome => {
      let total = this.stmt.total.get() as number;
      let dropped = 0;
      while (total + size > this.maxBytes) {
        const oldest = this.stmt.oldest.get() as { id: number; bytes: number } | undefined;
        if (!oldest) break;
        this.stmt.remove.run(oldest.id);
        total -= oldest.bytes;
        dropped++;
      }
      const info = this.stmt.insert.run(
        now,
        batch.device,
        batch.stream,
        batch.epoch,
        batch.seq,
        batch.records,
        batch.origin,
        batch.reason,
        batch.message.slice(0, MAX_MESSAGE_CHARS),
        size,
        batch.envelope,
      );
      return { id: Number(info.lastInsertRowid), dropped };
    })();
  }

  list(): DeadLetterEntry[] {
    return this.stmt.list.all() as DeadLetterEntry[];
  }

  get(id: number): DeadLetterEntry | undefined {
    return this.stmt.get.get(id) as DeadLetterEntry | undefined;
  }

  envelope(id: number): Uint8Array | undefined {
    const blob = this.stmt.envelope.get(id) as Buffer | undefined;
    return blob === undefined ? undefined : new Uint8Array(blob);
  }

  /** A replay wrote the batch to the output: it leaves the store. */
  remove(id: number): void {
    this.stmt.remove.run(id);
  }

  /** A replay failed again: the new reason replaces the old, and the attempt is counted. */
  failedAgain(id: number, reason: string, message: string): void {
    this.stmt.failedAgain.run(reason, message.slice(0, MAX_MESSAGE_CHARS), id);
  }

  count(): number {
    return this.stmt.count.get() as number;
  }

  bytes(): number {
    return this.stmt.total.get() as number;
  }

  close(): void {
    this.db.close();
  }
}
