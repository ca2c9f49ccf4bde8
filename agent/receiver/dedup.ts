import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { openDatabase } from '../util/sqlite.ts';
import { AgentError } from '../errors.ts';

export type Verdict = 'new' | 'duplicate' | 'stale';

/**
 * Which batches the centre has already taken, by (device, stream, queue epoch, sequence), in its own SQLite file.
 * Sequences more than `window` below the highest seen for a stream are refused as stale replays, which
 * bounds the state without ever accepting an old batch twice.
 */
export class DedupState {
  private readonly db: Database.Database;
  private readonly highest = new Map<string, number>();
  private readonly stmt;
  private marks = 0;
  private readonly window: number;

  constructor(path: string, window: number) {
    this.window = window;
    try {
      mkdirSync(dirname(path), { recursive: true });
      this.db = openDatabase(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.exec(`CREATE TABLE IF NOT EXISTS seen (device TEXT NOT NULL, stream TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL,
                      records INTEGER NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (device, stream, epoch, seq)) WITHOUT ROWID`);
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
    this.stmt = {
      has: this.db.prepare('SELECT 1 FROM seen WHERE device = ? AND stream = ? AND epoch = ? AND seq = ?').pluck(),
      insert: this.db.prepare('INSERT INTO seen (device, stream, epoch, seq, records, at) VALUES (?, ?, ?, ?, ?, ?)'),
      prune: this.db.prepare('DELETE FROM seen WHERE device = ? AND stream = ? AND epoch = ? AND seq < ?'),
    };
  }

  /** `epoch` is the queue epoch in hex: sequences are unique within (device, stream, epoch). */
  check(device: string, stream: string, epoch: string, seq: number): Verdict {
    const high = this.highest.get(`${device}\u0000${stream}\u0000${epoch}`);
    if (high !== undefined && seq <= high - this.window) return 'stale';
    return this.stmt.has.get(device, stream, epoch, seq) ? 'duplicate' : 'new';
  }

  mark(device: string, stream: string, epoch: string, seq: number, records: number): void {
    const key = `${device}\u0000${stream}\u0000${epoch}`;
    this.stmt.insert.run(device, stream, epoch, seq, records, Date.now());
    const high = this.highest.get(key);
    if (high === undefined || seq > high) this.highest.set(key, seq);
    if (++this.marks % 1000 === 0) this.stmt.prune.run(device, stream, epoch, (this.highest.get(key) ?? 0) - this.window);
  }

  close(): void {
    this.db.close();
  }
}
