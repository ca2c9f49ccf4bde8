import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chunkRecords } from '../../agent/queue/chunking.ts';
import { RecordWriter } from '../../agent/envelope/record-writer.ts';
import { decodeRecords, decompress, type Compression } from '../../agent/envelope/codec.ts';

const records = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ n: from + i, sensor: `s${(from + i) % 7}`, v: (from + i) / 3 }));

/** Every chunk's records, decoded, in order. */
function decoded(chunks: ReturnType<typeof chunkRecords>, compression: Compression): unknown[] {
  return chunks.flatMap((c) => decodeRecords(decompress(c.payload, compression, 1 << 24)));
}

describe('chunking', () => {
  for (const compression of ['none', 'deflate'] as const) {
    it(`gives each chunk bytes of its own though their CBOR is assembled in one reused buffer (${compression})`, () => {
      const writer = new RecordWriter();
      const emits = [writer.write(records(0, 250), 1 << 20).records, writer.write(records(250, 250), 1 << 20).records];
      const chunks = chunkRecords(emits, 100, 1 << 20, { compression, level: undefined });
      assert.equal(chunks.length, 5);
      // A second cut reuses the assembly buffer: the first cut's payloads must not change.
      chunkRecords([writer.write(records(1000, 300), 1 << 20).records], 100, 1 << 20, { compression, level: undefined });
      assert.deepEqual(decoded(chunks, compression), records(0, 500));
    });
  }

  it('takes no payload from Node’s shared Buffer pool, and leaves the pool as it was', () => {
    const poolSize = Buffer.poolSize;
    const writer = new RecordWriter();
    const chunks = chunkRecords([writer.write(records(0, 1000), 1 << 20).records], 200, 1 << 20, { compression: 'deflate', level: undefined });
    const pooled = Buffer.allocUnsafe(8);
    assert.equal(Buffer.poolSize, poolSize);
    assert.ok(pooled.buffer.byteLength === poolSize, 'small buffers still come from the pool');
    // zlib's own 16 KiB output buffer, or a buffer of exactly the payload's size: never a 64 KiB pool slab.
    for (const c of chunks)
      assert.ok(
        c.payload.buffer.byteLength <= 16 * 1024 || c.payload.buffer.byteLength === c.payload.byteLength,
        `payload held in ${c.payload.buffer.byteLength} bytes`,
      );
  });

  it('cuts a chunk larger than the kept assembly buffer, and the next chunks still come out right', () => {
    const writer = new RecordWriter();
    const big = Array.from({ length: 8 }, (_, i) => ({ n: i, blob: 'x'.repeat(100_000) }));
    const chunks = chunkRecords([writer.write(big, 1 << 20).records], 1000, 1 << 20, { compression: 'deflate', level: undefined });
    assert.equal(chunks.length, 1);
    assert.ok(chunks[0]!.cborBytes > 800_000);
    assert.deepEqual(decoded(chunks, 'deflate'), big);
    const after = chunkRecords([writer.write(records(0, 10), 1 << 20).records], 1000, 1 << 20, { compression: 'none', level: undefined });
    assert.deepEqual(decoded(after, 'none'), records(0, 10));
  });
});
