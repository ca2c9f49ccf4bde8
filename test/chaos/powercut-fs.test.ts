import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
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
