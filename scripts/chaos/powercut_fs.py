#!/usr/bin/python3
"""A FUSE pass-through over a backing directory that forgets, at a simulated power cut, everything not fsynced.

Usage: /usr/bin/python3 scripts/chaos/powercut_fs.py BACKING MOUNTPOINT

What is durable (reaches BACKING) and when — the model a power cut is judged against:
- File data and size changes stay in this process's memory (a page overlay per file) until fsync or
  fdatasync of that file; then the file's overlay is written to its backing file and fsynced there.
- Names are volatile too: a create, unlink or rename becomes durable only at an fsync of the directory
  that holds the name (fsyncdir), in the order they happened. A new file fsynced before its directory holds
  durable data that no name reaches yet: after a cut it is gone, as on a file system that needs the
  directory fsync (POSIX asks for it; SQLite does it for its WAL and journals). Hard links are refused
  (EPERM): nothing here needs them.
- A rename across directories is one change recorded in both directories: an fsync of either makes the
  whole of it durable (the old name gone, the new one there), as a journalling file system commits a rename
  in one transaction; with neither fsynced, a cut undoes it.
- Symbolic links are names like any other: symlink creates one (its target is written with it, as a real
  file system writes it with the inode), durable at the fsync of its directory; renaming one over another
  (the release store's link switch) is a rename like any other. readlink reads the target.
- A file's mode is written with the file (create); a later chmod reaches the disk with the next fsync of the
  file or of the directory that names it, as a journalling file system commits it with either.
- Directories themselves (mkdir, rmdir) are durable at once: the agent creates its data directory once,
  and modelling them would add nothing SQLite relies on. An rmdir first makes durable the pending name
  changes of the directory it removes (it is empty in the view, so they are removals and renames away).
- Locks are left to the kernel (the lock operation is not implemented), which is right for processes on
  one machine. Shared writable mmap (SQLite's -shm) goes through the kernel's page cache and reaches the
  overlay by write-back like any other write.

Control, one command a line on stdin, one JSON answer a line on stdout:
- `cut KEEP SEED`: the power goes. Each unsynced page write (and each unsynced size change) survives with
  probability KEEP (0 = drop every one of them, the default model; above 0 = an arbitrary subset reaches the
  disk, as a real disk's cache may), drawn from SEED; unsynced names never survive. From then on every
  operation fails with EIO, so nothing the killed process still does reaches BACKING. Answer:
  {"cut": {"files": n, "pages_dropped": n, "pages_kept": n, "names_dropped": n}}.
- `stats`: {"stats": {"dirty_pages": n, "pending_names": n, "fsyncs": n, "dirsyncs": n, "used": n, "capacity": n|null}}.
- `capacity BYTES`: the disk is BYTES large. The space used is the sum over the files that processes can
  still reach (a name in the mounted tree or an open handle) of their sizes rounded up to whole 4096-byte
  pages (no sparse files: growing a file by truncate takes space too). A write or truncate that would take
  it beyond BYTES fails with ENOSPC and changes nothing; statfs reports BYTES as the size and what is left
  as the free space. Lowering BYTES under what is used already is allowed (every growth fails until files
  shrink or go). `capacity none`: no limit again (statfs reports the backing file system). Answer:
  {"capacity": {"capacity": n|null, "used": n}}.
On mount the daemon prints {"ready": true}. Unmount (fusermount -u MOUNTPOINT) ends it; remounting over
the same BACKING is the reboot.

Needs /dev/fuse, root (or fuse group) and python3-fusepy (`import fusepy`, Debian's module name).
"""

import errno
import json
import os
import random
import stat
import sys
import threading

import fusepy

PAGE = 4096
STAGING_DIR = '.powercut-staging'  # inside BACKING: durable data of files no durable name reaches yet


class Inode:
    """One file's content: a durable store (an fd on a backing or staging file) plus the unsynced overlay."""

    def __init__(self, ino, fd, store_path, target=None):
        self.ino = ino
        self.fd = fd  # None for a symbolic link: its whole content is `target`
        self.store_path = store_path
        self.target = target
        self.durable_size = os.fstat(fd).st_size if fd is not None else len(os.fsencode(target))
        self.size = self.durable_size
        # Offsets at and beyond this read as zeros from the store (an unsynced shrink hid them).
        self.trunc_floor = None
        self.dirty = {}  # page index -> bytearray(PAGE)
        self.names = 0
        self.handles = 0
        if target is None:
            self.mode = stat.S_IFREG | (os.fstat(fd).st_mode & 0o7777)
        else:
            self.mode = stat.S_IFLNK | 0o777

    def sync_mode(self):
        """A chmod reaches the disk with the file's next fsync or an fsync of the directory naming it."""
        if self.fd is not None and os.fstat(self.fd).st_mode & 0o7777 != self.mode & 0o7777:
            os.fchmod(self.fd, self.mode & 0o7777)

    def _durable_page(self, idx):
        start = idx * PAGE
        limit = self.durable_size if self.trunc_floor is None else min(self.durable_size, self.trunc_floor)
        page = bytearray(PAGE)
        if start < limit:
            data = os.pread(self.fd, min(PAGE, limit - start), start)
            page[: len(data)] = data
        return page

    def page(self, idx):
        got = self.dirty.get(idx)
        return got if got is not None else self._durable_page(idx)

    def read(self, size, offset):
        end = min(self.size, offset + size)
        if offset >= end:
            return b''
        out = bytearray()
        pos = offset
        while pos < end:
            idx, within = divmod(pos, PAGE)
            take = min(PAGE - within, end - pos)
            out += self.page(idx)[within : within + take]
            pos += take
        return bytes(out)

    def write(self, data, offset):
        pos = offset
        view = memoryview(data)
        done = 0
        while done < len(view):
            idx, within = divmod(pos, PAGE)
            take = min(PAGE - within, len(view) - done)
            page = self.dirty.get(idx)
            if page is None:
                page = self._durable_page(idx)
                self.dirty[idx] = page
            page[within : within + take] = view[done : done + take]
            pos += take
            done += take
        self.size = max(self.size, offset + len(view))
        return len(view)

    def truncate(self, length):
        if length < self.size:
            for idx in [i for i in self.dirty if i * PAGE >= length]:
                del self.dirty[idx]
            idx, within = divmod(length, PAGE)
            if within:
                page = self.page(idx)
                page[within:] = bytes(PAGE - within)
                self.dirty[idx] = page
            self.trunc_floor = length if self.trunc_floor is None else min(self.trunc_floor, length)
        self.size = length

    def apply(self, keep=None, rng=None):
        """Writes the overlay to the store (all of it, or the pages `keep` lets through); returns (kept, dropped)."""
        kept = dropped = 0
        all_in = keep is None
        old_size = self.durable_size
        if self.trunc_floor is not None and (all_in or rng.random() < keep):
            os.ftruncate(self.fd, self.trunc_floor)
            old_size = min(old_size, self.trunc_floor)
        for idx in sorted(self.dirty):
            if all_in or rng.random() < keep:
                os.pwrite(self.fd, bytes(self.dirty[idx]), idx * PAGE)
                kept += 1
            else:
                dropped += 1
        # A size change is one more unsynced write: kept or not, pages never make the file longer by themselves.
        os.ftruncate(self.fd, self.size if all_in or rng.random() < keep else old_size)
        self.sync_mode()
        os.fsync(self.fd)
        self.durable_size = os.fstat(self.fd).st_size
        self.trunc_floor = None
        self.dirty = {}
        return kept, dropped

    def attrs(self):
        return dict(st_mode=self.mode, st_nlink=max(self.names, 1), st_size=self.size, st_uid=0, st_gid=0,
                    st_atime=0, st_mtime=0, st_ctime=0, st_ino=self.ino, st_blocks=(self.size + 511) // 512, st_blksize=PAGE)


class PowerCutFS(fusepy.Operations):
    use_ns = True

    def __init__(self, backing):
        self.backing = os.path.realpath(backing)
        self.mutex = threading.RLock()
        self.dead = False
        self.next_ino = 2
        self.next_fh = 1
        self.handles = {}  # fh -> Inode
        self.view = {}  # path -> Inode: what processes see now
        self.durable = {}  # path -> Inode: what BACKING names
        self.dirs = {'/'}
        self.pending = {}  # directory -> [op]: name changes not yet made durable by fsyncdir
        self.fsyncs = 0
        self.dirsyncs = 0
        self.capacity = None  # bytes the disk holds (None: unlimited); see `capacity` in the module comment
        staging = os.path.join(self.backing, STAGING_DIR)
        if os.path.isdir(staging):
            # Orphans of the last session (created, never named durably): a file system check drops them.
            for name in os.listdir(staging):
                os.unlink(os.path.join(staging, name))
        else:
            os.mkdir(staging)
        self.staging = staging
        for root, dirnames, filenames in os.walk(self.backing):
            rel = '/' + os.path.relpath(root, self.backing).lstrip('.')
            rel = '/' if rel == '/' else rel.rstrip('/')
            if rel == '/' + STAGING_DIR:
                continue
            dirnames[:] = [d for d in dirnames if not (rel == '/' and d == STAGING_DIR)]
            links = [d for d in dirnames if os.path.islink(os.path.join(root, d))]
            dirnames[:] = [d for d in dirnames if d not in links]
            for d in dirnames:
                self.dirs.add(self.join(rel, d))
            for f in filenames + links:
                path = self.join(rel, f)
                if os.path.islink(self.real(path)):
                    inode = self.new_inode(None, self.real(path), os.readlink(self.real(path)))
                else:
                    inode = self.new_inode(os.open(self.real(path), os.O_RDWR), self.real(path))
                inode.names = 1
                self.view[path] = inode
                self.durable[path] = inode

    # ---- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def join(parent, name):
        return '/' + name if parent == '/' else parent + '/' + name

    def real(self, path):
        return os.path.join(self.backing, path.lstrip('/'))

    def new_inode(self, fd, store_path, target=None):
        inode = Inode(self.next_ino, fd, store_path, target)
        self.next_ino += 1
        return inode

    def alive(self):
        if self.dead:
            raise fusepy.FuseOSError(errno.EIO)

    def inode_for(self, path, fh=None):
        if fh:
            inode = self.handles.get(fh)
            if inode is not None:
                return inode
        inode = self.view.get(path)
        if inode is None:
            raise fusepy.FuseOSError(errno.ENOENT)
        return inode

    @staticmethod
    def allocated(size):
        return (size + PAGE - 1) // PAGE * PAGE

    def used(self):
        inodes = {id(i): i for i in list(self.view.values()) + list(self.handles.values())}
        return sum(self.allocated(i.size) for i in inodes.values())

    def make_room(self, inode, new_size):
        """Raises ENOSPC when growing `inode` to `new_size` bytes would take the tree beyond the capacity."""
        if self.capacity is None:
            return
        growth = self.allocated(new_size) - self.allocated(inode.size)
        if growth > 0 and self.used() + growth > self.capacity:
            raise fusepy.FuseOSError(errno.ENOSPC)

    def record(self, path, op):
        self.pending.setdefault(os.path.dirname(path) or '/', []).append(op)

    def record_rename(self, old, new, inode):
        """A rename: recorded in the new name's directory and, across directories, in the old one's too."""
        op = ('rename', old, new, inode, [False])  # the list: set once either directory's fsync applied it
        self.record(new, op)
        if os.path.dirname(old) != os.path.dirname(new):
            self.record(old, op)

    def evict_durable(self, path):
        """Removes a durable name; content still referenced in the view or by a handle moves to staging."""
        inode = self.durable.pop(path, None)
        if inode is None:
            return
        if inode.names > 0 or inode.handles > 0 or inode in self.view.values():
            parked = os.path.join(self.staging, str(inode.ino))
            os.rename(self.real(path), parked)
            inode.store_path = parked
        else:
            os.unlink(self.real(path))
            if inode.fd is not None:
                os.close(inode.fd)

    def link_durable(self, path, inode):
        if self.durable.get(path) is inode:
            return
        for other, node in list(self.durable.items()):
            if node is inode:
                # Durable under another name already (no hard links here): move that name.
                self.evict_durable(path)
                os.rename(self.real(other), self.real(path))
                del self.durable[other]
                self.durable[path] = inode
                inode.store_path = self.real(path)
                return
        self.evict_durable(path)
        os.rename(inode.store_path, self.real(path))
        inode.store_path = self.real(path)
        self.durable[path] = inode

    def apply_names(self, directory):
        for op in self.pending.pop(directory, []):
            kind = op[0]
            if kind == 'link':
                _, path, inode = op
                self.link_durable(path, inode)
            elif kind == 'unlink':
                _, path = op
                self.evict_durable(path)
            elif kind == 'rename':
                _, old, new, inode, applied = op
                if applied[0]:
                    continue
                applied[0] = True
                # The create of the old name, still pending in another directory, is subsumed by this rename.
                source = self.pending.get(os.path.dirname(old) or '/', [])
                source[:] = [o for o in source if not (o[0] == 'link' and o[1] == old and o[2] is inode)]
                if self.durable.get(old) is inode:
                    self.evict_durable(new)
                    os.rename(self.real(old), self.real(new))
                    del self.durable[old]
                    self.durable[new] = inode
                    inode.store_path = self.real(new)
                else:
                    self.link_durable(new, inode)
        prefix = directory.rstrip('/') + '/'
        for path, inode in self.durable.items():
            if path.startswith(prefix) and '/' not in path[len(prefix):]:
                inode.sync_mode()
        fd = os.open(self.real(directory), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # ---- control -------------------------------------------------------------------------------------
    def cut(self, keep, seed):
        with self.mutex:
            rng = random.Random(seed)
            kept = dropped = files = 0
            inodes = {id(i): i for i in list(self.view.values()) + list(self.handles.values()) + list(self.durable.values())}
            for inode in inodes.values():
                if not inode.dirty and inode.trunc_floor is None and inode.size == inode.durable_size:
                    continue
                files += 1
                if keep > 0:
                    k, d = inode.apply(keep, rng)
                else:
                    k, d = 0, len(inode.dirty)
                kept += k
                dropped += d
            names = sum(len(ops) for ops in self.pending.values())
            self.pending = {}
            self.dead = True
            return dict(files=files, pages_dropped=dropped, pages_kept=kept, names_dropped=names)

    def stats(self):
        with self.mutex:
            inodes = {id(i): i for i in list(self.view.values()) + list(self.handles.values())}
            return dict(dirty_pages=sum(len(i.dirty) for i in inodes.values()),
                        pending_names=sum(len(ops) for ops in self.pending.values()),
                        fsyncs=self.fsyncs, dirsyncs=self.dirsyncs, used=self.used(), capacity=self.capacity)

    def set_capacity(self, capacity):
        with self.mutex:
            if capacity is not None and capacity < 0:
                raise ValueError('capacity must be at least 0 bytes')
            self.capacity = capacity
            return dict(capacity=self.capacity, used=self.used())

    # ---- FUSE operations -----------------------------------------------------------------------------
    def init(self, path):
        print(json.dumps({'ready': True}), flush=True)

    def statfs(self, path):
        st = os.statvfs(self.backing)
        if self.capacity is not None:
            with self.mutex:
                free = max(0, self.capacity - self.used())
            return dict(f_bsize=PAGE, f_frsize=PAGE, f_blocks=self.capacity // PAGE, f_bfree=free // PAGE,
                        f_bavail=free // PAGE, f_files=st.f_files, f_ffree=st.f_ffree, f_namemax=st.f_namemax)
        return dict(f_bsize=st.f_bsize, f_frsize=st.f_frsize, f_blocks=st.f_blocks, f_bfree=st.f_bfree,
                    f_bavail=st.f_bavail, f_files=st.f_files, f_ffree=st.f_ffree, f_namemax=st.f_namemax)

    def getattr(self, path, fh=None):
        with self.mutex:
            if path in self.dirs and not fh:
                if self.dead and path != '/':
                    raise fusepy.FuseOSError(errno.EIO)
                return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2, st_uid=0, st_gid=0, st_atime=0, st_mtime=0, st_ctime=0)
            self.alive()
            return self.inode_for(path, fh).attrs()

    def readdir(self, path, fh):
        with self.mutex:
            self.alive()
            names = ['.', '..']
            prefix = path.rstrip('/') + '/'
            for p in list(self.view) + list(self.dirs):
                if p != path and p.startswith(prefix) and '/' not in p[len(prefix):]:
                    names.append(p[len(prefix):])
            return names

    def mkdir(self, path, mode):
        with self.mutex:
            self.alive()
            if path in self.dirs or path in self.view:
                raise fusepy.FuseOSError(errno.EEXIST)
            os.mkdir(self.real(path))
            self.dirs.add(path)

    def rmdir(self, path):
        with self.mutex:
            self.alive()
            if any(p.startswith(path + '/') for p in list(self.view) + list(self.dirs)):
                raise fusepy.FuseOSError(errno.ENOTEMPTY)
            # Durable at once (see the module comment): so are the removals that emptied it.
            self.apply_names(path)
            os.rmdir(self.real(path))
            self.dirs.discard(path)

    def create(self, path, mode, fi=None):
        with self.mutex:
            self.alive()
            existing = self.view.get(path)
            if existing is not None:
                return self.open(path, os.O_RDWR)
            ino = self.next_ino
            store = os.path.join(self.staging, str(ino))
            fd = os.open(store, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, mode & 0o7777)  # the mode is written with the inode, as its name is
            inode = self.new_inode(fd, store)
            inode.names = 1
            self.view[path] = inode
            self.record(path, ('link', path, inode))
            return self.handle(inode)

    def handle(self, inode):
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = inode
        inode.handles += 1
        return fh

    def open(self, path, flags):
        with self.mutex:
            self.alive()
            inode = self.inode_for(path)
            if flags & os.O_TRUNC:
                inode.truncate(0)
            return self.handle(inode)

    def release(self, path, fh):
        with self.mutex:
            inode = self.handles.pop(fh, None)
            if inode is not None:
                inode.handles -= 1

    def read(self, path, size, offset, fh):
        with self.mutex:
            self.alive()
            return self.inode_for(path, fh).read(size, offset)

    def write(self, path, data, offset, fh):
        with self.mutex:
            self.alive()
            inode = self.inode_for(path, fh)
            self.make_room(inode, max(inode.size, offset + len(data)))
            return inode.write(data, offset)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            self.alive()
            inode = self.inode_for(path, fh)
            self.make_room(inode, length)
            inode.truncate(length)

    def fsync(self, path, datasync, fh):
        with self.mutex:
            self.alive()
            self.inode_for(path, fh).apply()
            self.fsyncs += 1

    def fsyncdir(self, path, datasync, fh):
        with self.mutex:
            self.alive()
            self.apply_names(path)
            self.dirsyncs += 1

    def unlink(self, path):
        with self.mutex:
            self.alive()
            inode = self.view.pop(path, None)
            if inode is None:
                raise fusepy.FuseOSError(errno.ENOENT)
            inode.names -= 1
            self.record(path, ('unlink', path))

    def rename(self, old, new):
        with self.mutex:
            self.alive()
            inode = self.view.pop(old, None)
            if inode is None:
                raise fusepy.FuseOSError(errno.ENOENT)
            if os.path.dirname(new) not in self.dirs:
                self.view[old] = inode
                raise fusepy.FuseOSError(errno.ENOENT)
            replaced = self.view.get(new)
            if replaced is not None:
                replaced.names -= 1
            self.view[new] = inode
            self.record_rename(old, new, inode)

    def symlink(self, target, source):
        """fusepy's names: `target` is the new link's path, `source` what it points at."""
        with self.mutex:
            self.alive()
            if target in self.view or target in self.dirs:
                raise fusepy.FuseOSError(errno.EEXIST)
            ino = self.next_ino
            store = os.path.join(self.staging, str(ino))
            os.symlink(source, store)
            inode = self.new_inode(None, store, source)
            inode.names = 1
            self.view[target] = inode
            self.record(target, ('link', target, inode))

    def readlink(self, path):
        with self.mutex:
            self.alive()
            inode = self.inode_for(path)
            if inode.target is None:
                raise fusepy.FuseOSError(errno.EINVAL)
            return inode.target

    def link(self, target, source):
        raise fusepy.FuseOSError(errno.EPERM)

    def chmod(self, path, mode):
        with self.mutex:
            self.alive()
            inode = self.inode_for(path)
            inode.mode = stat.S_IFMT(inode.mode) | (mode & 0o7777)

    def chown(self, path, uid, gid):
        with self.mutex:
            self.alive()

    def utimens(self, path, times=None):
        with self.mutex:
            self.alive()

    def flush(self, path, fh):
        return 0


def control(fs):
    """Reads commands on stdin (see the module comment); stdin closing changes nothing."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == 'cut':
                keep = float(words[1]) if len(words) > 1 else 0.0
                seed = int(words[2]) if len(words) > 2 else 0
                answer = {'cut': fs.cut(keep, seed)}
            elif words[0] == 'capacity':
                if len(words) != 2:
                    raise ValueError('usage: capacity BYTES | capacity none')
                answer = {'capacity': fs.set_capacity(None if words[1] == 'none' else int(words[1]))}
            elif words[0] == 'stats':
                answer = {'stats': fs.stats()}
            else:
                answer = {'error': f'unknown command {words[0]!r}'}
        except Exception as err:  # the answer says what went wrong; the daemon keeps serving
            answer = {'error': repr(err)}
        print(json.dumps(answer), flush=True)


def main():
    if len(sys.argv) != 3:
        sys.exit(f'usage: {sys.argv[0]} BACKING MOUNTPOINT')
    backing, mountpoint = sys.argv[1], sys.argv[2]
    fs = PowerCutFS(backing)
    threading.Thread(target=control, args=(fs,), daemon=True).start()
    # hard_remove: an unlinked file that is still open stays reachable by its handle instead of being
    # renamed to a hidden name (which would be a rename this model would have to track).
    fusepy.FUSE(fs, mountpoint, foreground=True, nothreads=False, hard_remove=True, fsname='powercut', subtype='powercut')


if __name__ == '__main__':
    main()
