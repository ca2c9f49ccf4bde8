/**
 * Signed commands' states and used nonces, in a table of the queue file (one file to back up, one fsync
 * policy, and the queue's connection: no second writer). The table is created with IF NOT EXISTS, so an
 * older build opens the file as before and ignores it.
 *
 * A nonce's row is the proof it was used: inserted before the command runs (a replay finds it), kept until
 * the command's document expires (a replay after that is refused as expired by its date), then purged, so
 * the table stays bounded by the commands of the last hour.
 */
import type Database from 'better-sqlite3';

export type CommandState = 'accepted' | 'done' | 'failed' | 'refused' | 'expired' | 'interrupted';
export const TERMINAL: ReadonlySet<CommandState> = new Set(['done', 'failed', 'refused', 'expired', 'interrupted']);

export interface ReplyAddress {
  topic: string;
  correlation?: Buffer | undefined;
}

export interface StoredCommand {
  nonce: string;
  action: string;
  state: CommandState;
  deadlineMs: number;
  reply: ReplyAddress;
}

interface Row {
  nonce: string;
  action: string;
  state: CommandState;
  deadline_ms: number;
  reply_topic: string;
  correlation: Buffer | null;
}

const toStored = (r: Row): StoredCommand => ({
  nonce: r.nonce,
  action: r.action,
  state: r.state,
  deadlineMs: r.deadline_ms,
  reply: { topic: r.reply_topic, correlation: r.correlation ?? undefined },
});

export class CommandStore {
  /** The queue's connection, read each time: a whole restart of the agent opens the queue file anew. */
  private readonly db: () => Database.Database;

  constructor(db: () => Database.Database) {
    this.db = db;
    this.db().exec(`CREATE TABLE IF NOT EXISTS remote_commands (
      nonce TEXT PRIMARY KEY,
      action TEXT NOT NULL,
      state TEXT NOT NULL,
      deadline_ms INTEGER NOT NULL,
      response_json TEXT,
      updated_ms INTEGER NOT NULL,
      reply_topic TEXT NOT NULL,
      correlation BLOB
    )`);
  }

  /** Records the nonce as used and the command as accepted; false when the nonce was seen before. */
  claim(nonce: string, action: string, deadlineMs: number, reply: ReplyAddress, now = Date.now()): boolean {
    const result = this.db()
      .prepare(
        `INSERT OR IGNORE INTO remote_commands (nonce, action, state, deadline_ms, updated_ms, reply_topic, correlation) VALUES (?, ?, 'accepted', ?, ?, ?, ?)`,
      )
      .run(nonce, action, deadlineMs, now, reply.topic, reply.correlation ?? null);
    return result.changes === 1;
  }

  /** Moves a command to a terminal state, only if it is not terminal already (an expiry may have won). */
  finish(nonce: string, state: CommandState, response: unknown, now = Date.now()): boolean {
    const result = this.db()
      .prepare(`UPDATE remote_commands SET state = ?, response_json = ?, updated_ms = ? WHERE nonce = ? AND state = 'accepted'`)
      .run(state, JSON.stringify(response), now, nonce);
    return result.changes === 1;
  }

  get(nonce: string): (StoredCommand & { response: unknown }) | undefined {
    const row = this.db().prepare('SELECT * FROM remote_commands WHERE nonce = ?').get(nonce) as (Row & { response_json: string | null }) | undefined;
    if (!row) return undefined;
    return { ...toStored(row), response: row.response_json === null ? undefined : JSON.parse(row.response_json) };
  }

  /** Commands not terminal: at start these were cut short by the end of the previous run. */
  unfinished(): StoredCommand[] {
    return (this.db().prepare(`SELECT * FROM remote_commands WHERE state = 'accepted'`).all() as Row[]).map(toStored);
  }

  /** Forgets commands whose document has expired: their nonce cannot come back valid. */
  purge(now = Date.now()): number {
    return this.db().prepare(`DELETE FROM remote_commands WHERE state != 'accepted' AND deadline_ms < ?`).run(now).changes;
  }
}
