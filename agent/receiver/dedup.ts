import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { AgentError } from '../errors.ts';

export type Verdict = 'new' | 'duplicate' | 'stale';

/**
 * Which batches the centre has already taken, by (device, stream, sequence), in its own SQLite file.
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
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.exec(`CREATE TABLE IF NOT EXISTS seen (device TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL, records INTEGER NOT NULL, at INTEGER NOT NULL,
                      PRIMARY KEY (device, stream, seq)) WITHOUT ROWID`);
    } catch (cause) {
      throw new AgentError('QUEUE_OPEN_FAILED', `cannot open receiver state ${path}`, { cause });
    }
    for (const row of this.db.prepare('SELECT device, stream, max(seq) AS seq FROM seen GROUP BY device, stream').all() as { device: string; stream: string; seq: number }[]) {
      this.highest.set(`${row.device}\u0000${row.stream}`, row.seq);
    }
    this.stmt = {
      has: this.db.prepare('SELECT 1 FROM seen WHERE device = ? AND stream = ? AND seq = ?').pluck(),
      insert: this.db.prepare('INSERT INTO seen (device, stream, seq, records, at) VALUES (?, ?, ?, ?, ?)'),
      prune: this.db.prepare('DELETE FROM seen WHERE device = ? AND stream = ? AND seq < ?'),
    };
  }

  check(device: string, stream: string, seq: number): Verdict {
    const high = this.highest.get(`${device}\u0000${stream}`);
    if (high !== undefined && seq <= high - this.window) return 'stale';
    return this.stmt.has.get(device, stream, seq) ? 'duplicate' : 'new';
  }

  mark(device: string, stream: string, seq: number, records: number): void {
    const key = `${device}\u0000${stream}`;
    this.stmt.insert.run(device, stream, seq, records, Date.now());
    const high = this.highest.get(key);
    if (high === undefined || seq > high) this.highest.set(key, seq);
    if (++this.marks % 1000 === 0) this.stmt.prune.run(device, stream, (this.highest.get(key) ?? 0) - this.window);
  }

  close(): void {
    this.db.close();
  }
}
