/**
 * The memory an emit's written records occupy until their commit (its CBOR, then its record ends), recycled
 * once the commit has copied them into chunks. An emit's bytes used to be a fresh Buffer each: backing
 * stores outside V8's heap that, having waited for their commit, were promoted with their Buffer object and
 * freed only by a full collection, which at a gateway's steady rates comes seldom: at 1k rec/s they kept
 * ≈3 MiB of malloc heap alive. Recycled, a steady source reuses the same few blocks.
 *
 * A block is lent once and taken back once: `give` accepts only a block lent and not yet given back, so a
 * release repeated by mistake cannot hand one block to two emits. Blocks kept for reuse are bounded in count
 * and bytes; an emit larger than a kept block may be gets a block of its own that is not kept.
 */
const MIN_BLOCK = 4096;
/** Blocks above this are not kept: an occasional large emit must not pin its block. */
const MAX_KEPT_BLOCK = 256 * 1024;
/** Bytes of blocks kept for reuse, in all. */
const MAX_KEPT_BYTES = 1024 * 1024;

/** Above this, blocks grow in steps of it rather than doubling. */
const BLOCK_STEP = 64 * 1024;

/**
 * The capacity of a new block for `need` bytes: a power of two up to 64 KiB (small emits of a steady source
 * then fit each other's blocks), a multiple of 64 KiB above, so a large emit holds at most 64 KiB more than
 * it needs instead of up to twice it (a 350 KB emit, as a SQL source's may be: 384 KiB instead of 512).
 */
export function blockCapacity(need: number): number {
  if (need > BLOCK_STEP) return Math.ceil(need / BLOCK_STEP) * BLOCK_STEP;
  let capacity = MIN_BLOCK;
  while (capacity < need) capacity *= 2;
  return capacity;
}

export interface EmitBlock {
  /** The emit's CBOR: `size` bytes. */
  readonly bytes: Buffer;
  /** The emit's record ends: `count` entries, in the same block. */
  readonly ends: Uint32Array;
}

export class EmitBuffers {
  private readonly kept: ArrayBuffer[] = [];
  private keptBytes = 0;
  private readonly lent = new WeakSet<ArrayBuffer>();

  /** A block for an emit of `size` bytes of CBOR and `count` records. */
  take(size: number, count: number): EmitBlock {
    const endsAt = (size + 3) & ~3; // a Uint32Array must start 4-aligned
    const need = endsAt + count * 4;
    let block: ArrayBuffer | undefined;
    for (let i = this.kept.length - 1; i >= 0; i--) {
      if (this.kept[i]!.byteLength >= need) {
        block = this.kept[i]!;
        this.kept.splice(i, 1);
        this.keptBytes -= block.byteLength;
        break;
      }
    }
    if (block === undefined) block = new ArrayBuffer(blockCapacity(need));
    this.lent.add(block);
    return { bytes: Buffer.from(block, 0, size), ends: new Uint32Array(block, endsAt, count) };
  }

  /** Takes back the block of an emit whose records are no longer read (copied into chunks). */
  give(bytes: Uint8Array): void {
    const block = bytes.buffer as ArrayBuffer;
    if (!this.lent.has(block)) return;
    this.lent.delete(block);
    if (block.byteLength > MAX_KEPT_BLOCK || this.keptBytes + block.byteLength > MAX_KEPT_BYTES) return;
    this.kept.push(block);
    this.keptBytes += block.byteLength;
  }

  /** Blocks kept for reuse and their bytes (tests). */
  get keptStats(): { blocks: number; bytes: number } {
    return { blocks: this.kept.length, bytes: this.keptBytes };
  }
}
