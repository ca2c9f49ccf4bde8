/**
 * Watches that the queue file at its path is still the one the queue has open. A file deleted or replaced
 * under the running agent (an operator's cleanup, a restored backup, a second agent) would otherwise go
 * unnoticed: the agent keeps writing to a file no name reaches, and every record in it vanishes at the stop.
 * When the path's device/inode no longer match the open file's, the open file is copied (VACUUM INTO) to a
 * clearly named rescue file beside it, reported (log and counter), and copied again at close so the rescue
 * holds everything; the queue keeps running on its open file, which is still whole.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { Logger } from '../log.ts';
import type { Counter } from '../telemetry/registry.ts';

export class FileWatch {
  private readonly db: Database.Database;
  private readonly path: string;
  private readonly log: Logger;
  private readonly counter: Counter;
  private readonly now: () => number;
  private readonly identity: { dev: number; ino: number } | undefined;
  /** Where the records were saved, once the file was found replaced. */
  rescuedAs: string | undefined;

  constructor(db: Database.Database, path: string, log: Logger, counter: Counter, now: () => number) {
    this.db = db;
    this.path = path;
    this.log = log;
    this.counter = counter;
    this.now = now;
    this.identity = this.current();
  }

  private current(): { dev: number; ino: number } | undefined {
    try {
      const st = statSync(this.path);
      return { dev: st.dev, ino: st.ino };
    } catch {
      return undefined;
    }
  }

  /** Compares the path with the open file; on the first mismatch, saves the records and reports it. */
  check(): void {
    if (this.rescuedAs !== undefined || this.identity === undefined) return;
    const now = this.current();
    if (now !== undefined && now.dev === this.identity.dev && now.ino === this.identity.ino) return;
    const stamp = new Date(this.now()).toISOString().replace(/[:.]/g, '-');
    let target = `${this.path}.rescued-${stamp}`;
    for (let i = 1; existsSync(target); i++) target = `${this.path}.rescued-${stamp}-${i}`;
    this.rescuedAs = target;
    this.counter.inc();
    const saved = this.save();
    this.log.error(
      { path: this.path, found: now === undefined ? 'missing' : 'another file', rescuedAs: saved ? target : undefined },
      saved
        ? 'queue file was deleted or replaced under the running agent: its records were copied to the rescue file; the agent continues on the open file and copies again at stop (move the rescue file to the queue path, agent stopped, to send them)'
        : 'queue file was deleted or replaced under the running agent and the rescue copy failed; the agent continues on the open file and tries again at stop',
    );
  }

  /** At close: refreshes the rescue copy so it holds what was committed since the replacement. */
  rescueIfReplaced(): void {
    if (this.rescuedAs === undefined) return;
    if (this.save()) this.log.warn({ rescuedAs: this.rescuedAs }, 'queue records saved to the rescue file at stop');
  }

  /** Copies the open database to the rescue file (through a temporary name, so a rescue is never half). */
  private save(): boolean {
    const target = this.rescuedAs!;
    const tmp = `${target}.tmp`;
    try {
      rmSync(tmp, { force: true });
      this.db.prepare('VACUUM INTO ?').run(tmp);
      renameSync(tmp, target);
      return true;
    } catch (err) {
      rmSync(tmp, { force: true });
      this.log.error({ err: (err as Error).message, rescuedAs: target }, 'cannot copy the queue records to the rescue file');
      return false;
    }
  }
}
