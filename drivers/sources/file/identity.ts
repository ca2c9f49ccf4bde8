import { createHash } from 'node:crypto';
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * How a file is recognised: its device and inode, and a hash of its first bytes. The inode alone is not
 * enough: after a rotation deletes a file, the file system may give its inode to the next file created,
 * and a truncated file that was written again keeps its inode too. Up to HEAD_BYTES of its start are
 * hashed; a file shorter than that has a shorter head, extended as it grows.
 */
export const HEAD_BYTES = 1024;

export interface Head {
  /** How many bytes from the start were hashed. */
  readonly len: number;
  /** First 8 bytes of their SHA-256, hex. */
  readonly hash: string;
}

export const EMPTY_HEAD: Head = { len: 0, hash: '' };

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buffer, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buffer.subarray(0, got);
}

function hashOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest().subarray(0, 8).toString('hex');
}

/** The head of a file of `size` bytes, as far as it goes (HEAD_BYTES at most). */
export async function headOf(fh: FileHandle, size: number): Promise<Head> {
  const len = Math.min(size, HEAD_BYTES);
  if (len === 0) return EMPTY_HEAD;
  const bytes = await readAt(fh, 0, len);
  return { len: bytes.length, hash: hashOf(bytes) };
}

/** Whether the file starts with the bytes `head` was taken from. */
export async function startsWith(fh: FileHandle, size: number, head: Head): Promise<boolean> {
  if (head.len === 0) return true;
  if (size < head.len) return false;
  const bytes = await readAt(fh, 0, head.len);
  return bytes.length === head.len && hashOf(bytes) === head.hash;
}

/** The first line of a file (for a CSV header), at most `max` bytes; undefined without a newline within them. */
export async function firstLine(fh: FileHandle, max: number): Promise<string | undefined> {
  const bytes = await readAt(fh, 0, max + 1);
  const nl = bytes.indexOf(10);
  if (nl < 0) return undefined;
  return bytes.subarray(0, nl).toString('utf8').replace(/\r$/, '');
}

/** The offset just past the last newline before `size` (within `max` bytes back): where `start_at: end` begins. */
export async function lastLineEnd(fh: FileHandle, size: number, max: number): Promise<number> {
  const from = Math.max(0, size - max);
  const bytes = await readAt(fh, from, size - from);
  const nl = bytes.lastIndexOf(10);
  if (nl >= 0) return from + nl + 1;
  return from === 0 ? 0 : size;
}

export interface Found {
  readonly path: string;
  readonly fh: FileHandle;
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
}

/**
 * Looks in `dir` for a regular file that `accept` recognises (given it opened), other than the inodes in
 * `except`. Used to find a file again after a rotation renamed it (same inode and head) and the copy that a
 * copytruncate rotation made (same head, at least as long as what was read). The directory is read only on
 * such events, never at every poll.
 */
export async function findInDirectory(
  dir: string,
  accept: (found: Found) => Promise<boolean>,
  except: ReadonlySet<string> = new Set(),
): Promise<Found | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    const path = join(dir, name);
    try {
      const st = await stat(path);
      if (!st.isFile() || except.has(`${st.dev}:${st.ino}`)) continue;
      const fh = await open(path, 'r');
      const found = { path, fh, dev: st.dev, ino: st.ino, size: st.size };
      if (await accept(found).catch(() => false)) return found;
      await fh.close();
    } catch {
      // Gone between readdir and open, or unreadable: not the one.
    }
  }
  return undefined;
}
