/**
 * A small state file written whole: a temporary file beside it (0600), fsynced, renamed over the old one, and
 * the directory fsynced so the rename itself survives a power cut. A kill at any moment leaves the old content
 * or the new, never half of one. The temporary file is removed when the write fails.
 */
import { chmodSync, closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export function writeFileAtomic(path: string, text: string, mode = 0o600): void {
  const temp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(temp, 'w', mode);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(temp, mode); // the umask may have narrowed the mode, never widened it; make it exact
    renameSync(temp, path);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      // nothing was written, or it is gone already
    }
    throw err;
  }
  syncDirectory(dirname(path));
}

/** A rename or an unlink is durable only once the directory entry is on disk. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
