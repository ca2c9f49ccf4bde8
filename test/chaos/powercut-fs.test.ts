import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  symlinkSync,
  chmodSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PowerCutMount } from '../../scripts/chaos/fuse-mount.ts';
import { powerCutTestOptions, requirePowerCut } from '../helpers/powercut.ts';

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

// The model the queue is judged against: data and names that were not fsynced are gone after a cut; what
// was fsynced (file, and its directory for the name) is there. If this model were lenient, the queue test
// would prove nothing.
test('power-cut file system: a cut keeps exactly what was fsynced', powerCutTestOptions(), async () => {
  requirePowerCut();
  const dir = mkdtempSync(join(tmpdir(), 'powercut-fs-'));
  const backing = join(dir, 'backing');
  const mnt = join(dir, 'mnt');
  mkdirSync(backing);
  mkdirSync(mnt);
  let mount = await PowerCutMount.mount(backing, mnt);
  const fds: number[] = [];
  try {
    // durable: data fsynced, name made durable by the directory fsync
    const a = openSync(join(mnt, 'a'), 'w+');
    fds.push(a);
    writeSync(a, 'synced;');
    fsyncSync(a);
    const c = openSync(join(mnt, 'c'), 'w+');
    fds.push(c);
    writeSync(c, 'c-data');
    fsyncSync(c);
    syncDir(mnt);
    // data not fsynced: gone
    writeSync(a, 'lost-tail;');
    // data fsynced, but no directory fsync made the name durable: gone
    const b = openSync(join(mnt, 'b'), 'w+');
    fds.push(b);
    writeSync(b, 'unnamed');
    fsyncSync(b);
    // a rename that no directory fsync followed: undone
    renameSync(join(mnt, 'c'), join(mnt, 'c2'));
    assert.equal(readFileSync(join(mnt, 'a'), 'utf8'), 'synced;lost-tail;', 'before the cut, the writer reads its own writes');

    const report = await mount.cut();
    assert.ok(report.pages_dropped >= 1 && report.names_dropped >= 2, JSON.stringify(report));
    assert.throws(() => writeSync(a, 'after the cut'), /EIO/, 'nothing reaches the disk after the cut');
    for (const fd of fds.splice(0)) closeSync(fd);
    await mount.unmount();

    mount = await PowerCutMount.mount(backing, mnt);
    assert.equal(readFileSync(join(mnt, 'a'), 'utf8'), 'synced;');
    assert.equal(existsSync(join(mnt, 'b')), false, 'a name never made durable is gone');
    assert.equal(readFileSync(join(mnt, 'c'), 'utf8'), 'c-data', 'an unsynced rename is undone');
    assert.equal(existsSync(join(mnt, 'c2')), false);
  } finally {
    for (const fd of fds) closeSync(fd);
    await mount.unmount().catch(() => mount.forceUnmount());
    rmSync(dir, { recursive: true, force: true });
  }
});

// A full disk on demand: growth beyond the capacity fails with ENOSPC and changes nothing, statfs tells the
// truth about it, freeing space (truncate, unlink) lets writes through again, and `none` lifts the limit.
test('power-cut file system: capacity makes writes beyond it fail with ENOSPC', powerCutTestOptions(), async () => {
  requirePowerCut();
  const dir = mkdtempSync(join(tmpdir(), 'powercut-cap-'));
  const backing = join(dir, 'backing');
  const mnt = join(dir, 'mnt');
  mkdirSync(backing);
  mkdirSync(mnt);
  const mount = await PowerCutMount.mount(backing, mnt);
  const fds: number[] = [];
  try {
    const a = openSync(join(mnt, 'a'), 'w+');
    fds.push(a);
    writeSync(a, Buffer.alloc(5000, 1)); // two pages
    assert.deepEqual(await mount.capacity(4 * 4096), { capacity: 4 * 4096, used: 2 * 4096 });
    const fs = statfsSync(mnt);
    assert.equal(fs.blocks * fs.bsize, 4 * 4096, 'statfs reports the capacity as the size');
    assert.equal(fs.bavail * fs.bsize, 2 * 4096, 'statfs reports what is left as free');

    const b = openSync(join(mnt, 'b'), 'w+');
    fds.push(b);
    writeSync(b, Buffer.alloc(2 * 4096, 2)); // exactly fills the disk
    assert.throws(() => writeSync(b, 'x'), /ENOSPC/, 'one byte more needs a page the disk does not have');
    assert.throws(() => ftruncateSync(a, 4 * 4096), /ENOSPC/, 'growing by truncate takes space too');
    writeSync(a, Buffer.alloc(100, 3), 0, 100, 4000); // within pages already taken: allowed
    assert.equal(statfsSync(mnt).bavail, 0);
    assert.equal((await mount.stats()).used, 4 * 4096);

    ftruncateSync(b, 0); // frees two pages
    writeSync(b, Buffer.alloc(4096, 4), 0, 4096, 0);
    closeSync(fds.pop()!);
    unlinkSync(join(mnt, 'b')); // no name, no handle: its page is free again
    assert.equal((await mount.stats()).used, 2 * 4096);
    writeSync(a, Buffer.alloc(2 * 4096, 5), 0, 2 * 4096, 8192);
    assert.throws(() => writeSync(a, 'y', 4 * 4096), /ENOSPC/);

    assert.deepEqual(await mount.capacity(null), { capacity: null, used: 4 * 4096 });
    writeSync(a, Buffer.alloc(4096, 6), 0, 4096, 4 * 4096);
    assert.equal(readFileSync(join(mnt, 'a')).length, 5 * 4096);
    assert.ok(statfsSync(mnt).blocks * statfsSync(mnt).bsize > 4 * 4096, 'unlimited again: statfs reports the backing disk');
  } finally {
    for (const fd of fds) closeSync(fd);
    await mount.unmount().catch(() => mount.forceUnmount());
    rmSync(dir, { recursive: true, force: true });
  }
});

// What the release store relies on (agent/update/symlinks.ts, releases.ts): a symlink is a name like any other,
// durable with its directory's fsync; renaming a new link over an old one switches atomically and is undone
// by a cut before the directory fsync; a rename across directories is durable once either directory is
// fsynced; a chmod reaches the disk with the fsync of the file or of its directory.
test('power-cut file system: symlinks, renames over them, renames across directories, modes', powerCutTestOptions(), async () => {
  requirePowerCut();
  const dir = mkdtempSync(join(tmpdir(), 'powercut-links-'));
  const backing = join(dir, 'backing');
  const mnt = join(dir, 'mnt');
  mkdirSync(backing);
  mkdirSync(mnt);
  let mount = await PowerCutMount.mount(backing, mnt);
  try {
    mkdirSync(join(mnt, 'releases/1'), { recursive: true });
    mkdirSync(join(mnt, 'releases/2'), { recursive: true });
    mkdirSync(join(mnt, 'staging'));
    for (const v of ['1', '2']) {
      const fd = openSync(join(mnt, 'staging', v), 'w', 0o600);
      writeSync(fd, `exe ${v}`);
      fsyncSync(fd);
      closeSync(fd);
      chmodSync(join(mnt, 'staging', v), 0o755);
      renameSync(join(mnt, 'staging', v), join(mnt, 'releases', v, 'exe'));
    }
    syncDir(join(mnt, 'releases/1')); // the rename into releases/1 is durable; the one into releases/2 is not
    symlinkSync('releases/1', join(mnt, 'current'));
    syncDir(mnt);
    assert.equal(readlinkSync(join(mnt, 'current')), 'releases/1');
    assert.equal(readFileSync(join(mnt, 'current/exe'), 'utf8'), 'exe 1', 'the kernel follows the link');
    symlinkSync('releases/2', join(mnt, '.current.tmp'));
    renameSync(join(mnt, '.current.tmp'), join(mnt, 'current'));
    symlinkSync('releases/2', join(mnt, 'unsynced'));
    assert.equal(readlinkSync(join(mnt, 'current')), 'releases/2', 'before the cut, the switch is seen');

    await mount.cut();
    await mount.unmount();
    mount = await PowerCutMount.mount(backing, mnt);
    assert.equal(readlinkSync(join(mnt, 'current')), 'releases/1', 'a switch with no directory fsync is undone');
    assert.equal(existsSync(join(mnt, 'unsynced')), false);
    assert.equal(existsSync(join(mnt, '.current.tmp')), false);
    assert.equal(readFileSync(join(mnt, 'releases/1/exe'), 'utf8'), 'exe 1');
    assert.equal(statSync(join(mnt, 'releases/1/exe')).mode & 0o777, 0o755, 'the chmod went with the directory fsync');
    assert.equal(existsSync(join(mnt, 'releases/2/exe')), false, 'a rename across directories with neither fsynced is undone');
    assert.equal(existsSync(join(mnt, 'staging/2')), false, 'and the file it renamed was never named durably');

    symlinkSync('releases/2', join(mnt, '.current.tmp'));
    renameSync(join(mnt, '.current.tmp'), join(mnt, 'current'));
    syncDir(mnt);
    await mount.cut();
    await mount.unmount();
    mount = await PowerCutMount.mount(backing, mnt);
    assert.equal(readlinkSync(join(mnt, 'current')), 'releases/2', 'a switch followed by the directory fsync survives');
  } finally {
    await mount.unmount().catch(() => mount.forceUnmount());
    rmSync(dir, { recursive: true, force: true });
  }
});
