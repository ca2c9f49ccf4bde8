import { glob, open, stat } from 'node:fs/promises';
import { dirname, isAbsolute, matchesGlob, resolve } from 'node:path';
import { type Cursor, describeError, type SourceContext } from '../../../agent/sdk/index.ts';
import { type Found, findInDirectory, headOf, lastLineEnd, startsWith } from './identity.ts';
import type { FileOptions } from './options.ts';
import { type FilePosition, isFilePosition, TrackedFile } from './tracked.ts';

/** The paths and inodes the patterns match now. */
type Matched = Map<string, { path: string; dev: number; ino: number }>;

/**
 * The files a source follows: found by its patterns, found again after a restart from the committed cursor
 * (even when a rotation renamed them meanwhile), and told apart from files that took their place.
 */
export class FileSet {
  readonly files = new Map<string, TrackedFile>();
  private readonly patterns: string[];
  private readonly exclude: string[];
  private readonly options: FileOptions;
  private readonly ctx: SourceContext;
  /** Inodes the patterns matched at the last scan: a file still matched is never forgotten. */
  private matched: Matched = new Map();
  /** Something changed that the next cursor must carry even without records (a file added, forgotten, restarted). */
  changed = false;

  constructor(options: FileOptions, baseDir: string, ctx: SourceContext) {
    this.options = options;
    this.ctx = ctx;
    const absolute = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
    this.patterns = options.paths.map(absolute);
    this.exclude = options.exclude.map((p) => (p.includes('/') ? absolute(p) : `**/${p}`));
  }

  /** The directories to watch for hints: each pattern's part before its first glob character. */
  directories(): string[] {
    const dirs = this.patterns.map((p) => {
      const magic = p.search(/[*?[{]/);
      return magic < 0 ? dirname(p) : dirname(p.slice(0, magic + 1));
    });
    return [...new Set(dirs)];
  }

  /** The cursor: where each followed file is. */
  cursor(): Cursor {
    return { files: [...this.files.values()].map((f) => f.position as unknown as Cursor) };
  }

  /** Finds the files of a committed cursor again: at their path, or renamed within the same directory. */
  async restore(cursor: Cursor | undefined): Promise<void> {
    if (typeof cursor !== 'object' || cursor === null || Array.isArray(cursor) || !Array.isArray(cursor.files)) return;
    for (const entry of cursor.files) {
      if (!isFilePosition(entry)) continue;
      const position: FilePosition = entry;
      const same = (f: Found) => Promise.resolve(f.dev === position.dev && f.ino === position.ino);
      let found = await this.openAt(position.path);
      let renamed = false;
      if (found && !(await same(found))) {
        await found.fh.close();
        found = undefined;
      }
      if (!found) {
        found = await findInDirectory(dirname(position.path), same, new Set(this.files.keys()));
        renamed = found !== undefined;
      }
      if (!found) {
        this.ctx.problems.report('file_gone', 'a file followed before the restart is gone; lines it had after the committed offset are lost', {
          path: position.path,
          offset: position.offset,
        });
        this.changed = true;
        continue;
      }
      const head = { len: position.head_len, hash: position.head };
      const file = new TrackedFile({ ...found, path: position.path }, position.offset, head, this.options.format);
      if (renamed) file.rotatedAt = Date.now();
      this.files.set(file.key, file);
      if (await startsWith(found.fh, found.size, head)) await file.prepare(this.options.max_line_bytes);
      // A different head on the same inode: truncated and written again, or the inode was reused. The next
      // check() sees it and handles it as a truncation (looking for a copytruncate copy first).
    }
  }

  private async openAt(path: string): Promise<Found | undefined> {
    try {
      const fh = await open(path, 'r');
      const st = await fh.stat();
      return { path, fh, dev: st.dev, ino: st.ino, size: st.size };
    } catch {
      return undefined;
    }
  }

  private excluded(path: string): boolean {
    return this.exclude.some((p) => matchesGlob(path, p));
  }

  /**
   * Matches the patterns: files new to the set are followed (from `start_at` at the very first start, else
   * from their beginning); followed files whose path now leads elsewhere (renamed, deleted) are marked rotated.
   */
  async scan(firstStart: boolean): Promise<void> {
    const matched: Matched = new Map();
    try {
      for await (const path of glob(this.patterns)) {
        if (this.excluded(path)) continue;
        try {
          const st = await stat(path);
          if (st.isFile()) matched.set(`${st.dev}:${st.ino}`, { path, dev: st.dev, ino: st.ino });
        } catch {
          // Gone since the match.
        }
      }
    } catch (err) {
      this.ctx.problems.report('scan_failed', 'cannot match the paths', { err: describeError(err) });
      return;
    }
    this.matched = matched;
    const byPath = new Map([...matched.values()].map((m) => [m.path, m]));
    const now = Date.now();
    for (const file of this.files.values()) {
      const at = byPath.get(file.path);
      if ((at === undefined || at.ino !== file.ino || at.dev !== file.dev) && file.rotatedAt === undefined) {
        file.rotatedAt = now;
        this.ctx.counters.add('rotations');
      }
    }
    for (const [key, m] of matched) {
      if (this.files.has(key)) continue;
      if (this.files.size >= this.options.max_files) {
        this.ctx.problems.report(
          'too_many_files',
          'more files match than max_files; ignored',
          { path: m.path, max_files: this.options.max_files },
          { key: m.path },
        );
        continue;
      }
      await this.follow(m.path, firstStart);
    }
  }

  private async follow(path: string, firstStart: boolean): Promise<void> {
    const found = await this.openAt(path);
    if (!found) return;
    if (this.files.has(`${found.dev}:${found.ino}`)) {
      await found.fh.close();
      return;
    }
    const offset = firstStart && this.options.start_at === 'end' ? await lastLineEnd(found.fh, found.size, this.options.max_line_bytes) : 0;
    const file = new TrackedFile(found, offset, await headOf(found.fh, found.size), this.options.format);
    await file.prepare(this.options.max_line_bytes);
    this.files.set(file.key, file);
    this.changed = true;
    this.ctx.counters.add('files_opened');
    this.ctx.log.info({ path, offset }, 'following file');
  }

  /**
   * The file shrank below what was read, or starts with other bytes: it was truncated (copytruncate, or by
   * hand). Lines it had past the offset that were not read yet may survive in the copy a copytruncate made:
   * a file in the same directory that starts with the same head and is at least as long as what was read.
   * That copy is read from the offset to its end before the truncated file is read again from byte 0.
   */
  async truncated(file: TrackedFile): Promise<void> {
    this.ctx.counters.add('truncations');
    if (file.offset > 0) {
      const head = file.head;
      const offset = file.offset;
      const copy = await findInDirectory(
        dirname(file.path),
        async (f) => f.size >= offset && head.len > 0 && (await startsWith(f.fh, f.size, head)),
        new Set(this.files.keys()),
      );
      if (copy) {
        const rest = new TrackedFile({ ...copy, path: file.path }, offset, head, this.options.format);
        rest.rotatedAt = Date.now();
        rest.isCopy = true;
        await rest.prepare(this.options.max_line_bytes);
        this.files.set(rest.key, rest);
        file.predecessor = rest;
        this.ctx.log.info({ path: file.path, copy: copy.path, offset }, 'file truncated; reading the rest of its copy first');
      } else {
        this.ctx.log.info({ path: file.path, offset }, 'file truncated; reading it again from its start');
      }
    }
    file.restart();
    this.changed = true;
  }

  /** Files to read, rotated ones first (their lines are older); a file waits while its copy is being read. */
  inReadingOrder(): TrackedFile[] {
    const all = [...this.files.values()];
    const rotated = all.filter((f) => f.rotatedAt !== undefined).sort((a, b) => a.rotatedAt! - b.rotatedAt!);
    const live = all.filter((f) => f.rotatedAt === undefined);
    return [...rotated, ...live].filter((f) => f.predecessor === undefined || !this.files.has(f.predecessor.key));
  }

  /**
   * A rotated file read to its end, rotate_wait after its rotation, and matched by no pattern any more, is
   * closed and forgotten. A line it still holds without a newline is counted as `partial_line_dropped`.
   */
  async forgetIfDone(file: TrackedFile, atEnd: boolean, unfinishedLine: boolean): Promise<void> {
    if (file.rotatedAt === undefined || !atEnd) return;
    // Renamed to a path the patterns match: followed there, as any matched file (forgetting it would have the
    // next scan take it for a new file and read it again from its start).
    if (this.matched.has(file.key)) return;
    // No writer has a copy open: it is complete once read. A renamed file may still get its writer's last lines.
    if (!file.isCopy && Date.now() - file.rotatedAt < this.options.rotate_wait) return;
    if (unfinishedLine)
      this.ctx.problems.report('partial_line_dropped', 'a rotated file ended without a newline; its last line is dropped', { path: file.path });
    this.files.delete(file.key);
    for (const other of this.files.values()) if (other.predecessor === file) other.predecessor = undefined;
    await file.close();
    this.changed = true;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => f.close()));
    this.files.clear();
  }
}
