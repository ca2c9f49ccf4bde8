/**
 * One download of a new executable into `<staging>.part`, resumable at any point:
 *
 * - `<part>.list`: the chunk list, kept once its SHA-256 matched the manifest;
 * - `<part>.map`: which chunks are in the part file (a bitmap and the manifest id), rewritten atomically only
 *   after the part file was fsynced, so a bit set means its bytes are on disk. A kill -9 mid-chunk loses at
 *   most the chunks after the last map write; they are asked for again.
 *
 * Chunks the running executable has (same SHA-256 under the same content-defined cut) are copied from it;
 * the rest are asked for, at most `inFlight` at a time, so memory holds at most that many chunks. Each chunk
 * is checked against its length and hash before a byte of it is written: longer than declared is `oversize`,
 * anything else that does not match is `chunk_hash_mismatch`, and the download stops (what it has stays for
 * the next attempt). When every bit is set, the whole file's size and SHA-256 are checked.
 */
import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import type { Logger } from '../log.ts';
import { Refusal, type UpdateManifestDocument } from '../trust/index.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { type CdcChunk, cdcChunksOfFile } from './cdc.ts';
import { decodeChunkList } from './manifest.ts';
import { type ChunkFrame, correlationOf, LIST_SLICE_BYTES, type TransferObject } from './transfer-protocol.ts';

export interface DownloadOptions {
  manifest: UpdateManifestDocument;
  id: string;
  /** `<staging>.part`; the list and map files go beside it. */
  partPath: string;
  /** The executable running now, whose chunks need not be downloaded (undefined: download everything). */
  localSource: string | undefined;
  inFlight: number;
  /** No chunk for this long: ask again for what is in flight. */
  retryMs: number;
  request(object: TransferObject, chunks: number[]): void;
  progress?(p: DownloadProgress): void;
  log: Logger;
}

export interface DownloadProgress {
  total: number;
  /** Bytes in the part file (copied, fetched, or there from an earlier attempt). */
  have: number;
  copied: number;
  fetched: number;
}

/** How often the map is written while chunks arrive (and always when the window drains). */
const MAP_EVERY_CHUNKS = 16;

export class Download {
  private readonly o: DownloadOptions;
  private chunks: CdcChunk[] = [];
  private done: Uint8Array = new Uint8Array(0);
  private fd = -1;
  private readonly inFlight = new Set<number>();
  private missing: number[] = [];
  private listSlices: (Buffer | undefined)[] = [];
  private object: TransferObject = 'list';
  private unsaved = 0;
  private timer: NodeJS.Timeout | undefined;
  private settle: { resolve(): void; reject(err: unknown): void } | undefined;
  private stopped = false;
  readonly stats: DownloadProgress;

  constructor(options: DownloadOptions) {
    this.o = options;
    this.stats = { total: options.manifest.size, have: 0, copied: 0, fetched: 0 };
  }

  private get listPath() {
    return `${this.o.partPath}.list`;
  }
  private get mapPath() {
    return `${this.o.partPath}.map`;
  }

  /** Resolves when the part file holds the whole executable, verified. */
  async run(): Promise<void> {
    this.chunks = decodeChunkList(await this.chunkList(), this.o.manifest);
    this.openPart();
    if (this.stats.have < this.stats.total && this.o.localSource) await this.copyLocal(this.o.localSource);
    this.missing = this.indexesMissing();
    if (this.missing.length > 0) {
      this.object = 'exe';
      await this.fetch();
    }
    this.saveMap();
    await this.verifyWhole();
  }

  /** The list from disk (checked again), or fetched slice by slice. */
  private async chunkList(): Promise<Buffer> {
    try {
      const list = Buffer.from(readFileSync(this.listPath, 'utf8'), 'base64');
      decodeChunkList(list, this.o.manifest);
      return list;
    } catch {
      // none kept, or not this manifest's: fetch it
    }
    const bytes = this.o.manifest.chunks.count * 36;
    this.listSlices = new Array(Math.ceil(bytes / LIST_SLICE_BYTES)).fill(undefined);
    this.missing = this.listSlices.map((_, i) => i);
    this.object = 'list';
    await this.fetch();
    const list = Buffer.concat(this.listSlices as Buffer[]);
    this.listSlices = [];
    decodeChunkList(list, this.o.manifest);
    writeFileAtomic(this.listPath, list.toString('base64'));
    return list;
  }

  private openPart(): void {
    this.fd = openSync(this.o.partPath, 'a+');
    closeSync(this.fd);
    this.fd = openSync(this.o.partPath, 'r+', 0o600);
    ftruncateSync(this.fd, this.o.manifest.size);
    this.done = new Uint8Array(this.chunks.length);
    try {
      const map = JSON.parse(readFileSync(this.mapPath, 'utf8')) as { manifest: string; bits: string };
      if (map.manifest === this.o.id) {
        const bits = Buffer.from(map.bits, 'base64');
        for (let i = 0; i < this.chunks.length; i++) if (bits[i >> 3]! & (1 << (i & 7))) this.done[i] = 1;
      }
    } catch {
      // no map: a fresh start
    }
    this.stats.have = this.chunks.reduce((sum, c, i) => sum + (this.done[i] ? c.length : 0), 0);
    if (this.stats.have > 0) this.o.log.info({ have: this.stats.have, total: this.stats.total }, 'update: resuming a download');
  }

  private indexesMissing(): number[] {
    return this.chunks.flatMap((_, i) => (this.done[i] ? [] : [i]));
  }

  /** Copies the chunks the running executable has; one pass of content-defined chunking over it. */
  private async copyLocal(path: string): Promise<void> {
    const wanted = new Map<string, number[]>();
    this.chunks.forEach((c, i) => {
      if (this.done[i]) return;
      const key = c.sha256.toString('hex');
      wanted.set(key, [...(wanted.get(key) ?? []), i]);
    });
    // node:fs/promises on use: every start evaluates this module (remote control's update delivery).
    const local = await process.getBuiltinModule('node:fs/promises').open(path, 'r');
    const buffer = Buffer.allocUnsafe(LIST_SLICE_BYTES);
    try {
      for await (const chunk of cdcChunksOfFile(path)) {
        if (this.stopped) return;
        const targets = wanted.get(chunk.sha256.toString('hex'));
        if (!targets) continue;
        wanted.delete(chunk.sha256.toString('hex'));
        const { bytesRead } = await local.read(buffer, 0, chunk.length, chunk.offset);
        const data = buffer.subarray(0, bytesRead);
        // The file may have changed under us since it was chunked: copy only what still hashes right.
        if (bytesRead !== chunk.length || !createHash('sha256').update(data).digest().equals(chunk.sha256)) continue;
        for (const i of targets) {
          writeSync(this.fd, data, 0, data.length, this.chunks[i]!.offset);
          this.done[i] = 1;
          this.stats.have += data.length;
          this.stats.copied += data.length;
        }
      }
    } finally {
      await local.close();
    }
    this.saveMap();
    this.o.log.info({ copied: this.stats.copied, total: this.stats.total }, 'update: chunks copied from the running executable');
  }

  private fetch(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
      this.askMore();
    });
  }

  /** Asks for missing chunks up to the window. */
  private askMore(): void {
    if (this.stopped || !this.settle) return;
    if (this.missing.length === 0 && this.inFlight.size === 0) {
      const { resolve } = this.settle;
      this.settle = undefined;
      clearTimeout(this.timer);
      resolve();
      return;
    }
    const next: number[] = [];
    while (this.inFlight.size < this.o.inFlight && this.missing.length > 0) {
      const i = this.missing.shift()!;
      this.inFlight.add(i);
      next.push(i);
    }
    if (next.length > 0) this.o.request(this.object, next);
    this.armRetry();
  }

  private armRetry(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.resend('no chunk came in time'), this.o.retryMs);
    this.timer.unref();
  }

  /** After a reconnect or a silence: ask again for what is in flight (nothing that arrived is asked twice). */
  resend(why: string): void {
    if (this.stopped || !this.settle || this.inFlight.size === 0) return;
    this.o.log.info({ why, chunks: this.inFlight.size, object: this.object }, 'update: asking again for chunks in flight');
    this.o.request(this.object, [...this.inFlight]);
    this.armRetry();
  }

  /** A chunk frame for this download (the caller matched the manifest id). */
  receive(frame: ChunkFrame): void {
    if (this.stopped || !this.settle || frame.manifest !== correlationOf(this.o.id).toString('hex')) return;
    if (frame.object !== this.object || !this.inFlight.has(frame.index)) return; // late or unasked: ignored
    try {
      if (this.object === 'list') this.takeListSlice(frame);
      else this.takeChunk(frame);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.inFlight.delete(frame.index);
    this.o.progress?.(this.stats);
    this.askMore();
  }

  private takeListSlice(frame: ChunkFrame): void {
    const bytes = this.o.manifest.chunks.count * 36;
    const expected = Math.min(LIST_SLICE_BYTES, bytes - frame.index * LIST_SLICE_BYTES);
    if (frame.data.length > expected) throw new Refusal('oversize', `chunk list slice ${frame.index} is ${frame.data.length} bytes, ${expected} declared`);
    if (frame.data.length < expected) throw new Refusal('chunk_hash_mismatch', `chunk list slice ${frame.index} is short`);
    this.listSlices[frame.index] = Buffer.from(frame.data);
  }

  private takeChunk(frame: ChunkFrame): void {
    const chunk = this.chunks[frame.index]!;
    if (frame.data.length > chunk.length)
      throw new Refusal('oversize', `chunk ${frame.index} is ${frame.data.length} bytes, ${chunk.length} declared: nothing beyond the declared size is taken`);
    if (frame.data.length !== chunk.length || !createHash('sha256').update(frame.data).digest().equals(chunk.sha256))
      throw new Refusal('chunk_hash_mismatch', `chunk ${frame.index} (${frame.data.length} bytes at offset ${chunk.offset}) does not match its SHA-256`);
    writeSync(this.fd, frame.data, 0, frame.data.length, chunk.offset);
    this.done[frame.index] = 1;
    this.stats.have += chunk.length;
    this.stats.fetched += chunk.length;
    if (++this.unsaved >= MAP_EVERY_CHUNKS || this.inFlight.size === 1) this.saveMap();
  }

  /** fsync the part file, then record which chunks it holds. */
  private saveMap(): void {
    if (this.fd < 0) return;
    fdatasyncSync(this.fd);
    const bits = Buffer.alloc(Math.ceil(this.done.length / 8));
    for (let i = 0; i < this.done.length; i++) if (this.done[i]) bits[i >> 3]! |= 1 << (i & 7);
    writeFileAtomic(this.mapPath, JSON.stringify({ manifest: this.o.id, bits: bits.toString('base64') }));
    this.unsaved = 0;
  }

  private async verifyWhole(): Promise<void> {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    let position = 0;
    let read: number;
    while ((read = readSync(this.fd, buffer, 0, buffer.length, position)) > 0) {
      hash.update(buffer.subarray(0, read));
      position += read;
      if (position % (16 * 1024 * 1024) === 0) await new Promise((r) => setImmediate(r));
    }
    if (position !== this.o.manifest.size || hash.digest('hex') !== this.o.manifest.sha256) {
      // Every chunk was checked, so the disk changed under us: start this download again from nothing.
      rmSync(this.mapPath, { force: true });
      throw new Refusal('chunk_hash_mismatch', `the assembled file (${position} bytes) does not match the manifest's size and SHA-256`);
    }
  }

  /** Ends the download with this error (a refusal from outside: a chunk message over the size cap). */
  fail(err: unknown): void {
    if (!this.settle) return;
    const { reject } = this.settle;
    this.settle = undefined;
    this.saveMapQuietly();
    this.stop();
    reject(err);
  }

  private saveMapQuietly(): void {
    try {
      this.saveMap();
    } catch (err) {
      this.o.log.warn({ err }, 'update: cannot save download progress');
    }
  }

  /** Stops asking; what arrived stays on disk for the next attempt. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.settle) {
      const { reject } = this.settle;
      this.settle = undefined;
      this.saveMapQuietly();
      reject(new Error('download stopped'));
    }
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = -1;
    }
  }

  /** The file when run() resolved; the caller moves or copies it. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
