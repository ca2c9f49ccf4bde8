import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { blockCapacity, EmitBuffers } from '../../agent/envelope/emit-buffers.ts';
import { RecordWriter } from '../../agent/envelope/record-writer.ts';

describe('emit buffers', () => {
  it('lends a block once: given back, the next emit reuses it; given back twice, it is not lent to two emits', () => {
    const pool = new EmitBuffers();
    const a = pool.take(1000, 10);
    assert.equal(a.bytes.length, 1000);
    assert.equal(a.ends.length, 10);
    assert.ok(a.ends.byteOffset >= 1000 && a.ends.byteOffset % 4 === 0, 'the ends follow the bytes, aligned');
    pool.give(a.bytes);
    pool.give(a.bytes); // a mistaken second release
    const b = pool.take(900, 5);
    const c = pool.take(900, 5);
    assert.equal(b.bytes.buffer, a.bytes.buffer, 'the block given back is reused');
    assert.notEqual(c.bytes.buffer, b.bytes.buffer, 'one block is never lent to two emits');
  });

  it('keeps neither blocks over 256 KiB nor more than 1 MiB of blocks', () => {
    const pool = new EmitBuffers();
    const big = pool.take(300 * 1024, 1);
    pool.give(big.bytes);
    assert.deepEqual(pool.keptStats, { blocks: 0, bytes: 0 });
    const blocks = Array.from({ length: 10 }, () => pool.take(200 * 1024, 1));
    for (const b of blocks) pool.give(b.bytes);
    assert.ok(pool.keptStats.bytes <= 1024 * 1024, `${pool.keptStats.bytes} bytes kept`);
    assert.equal(pool.keptStats.blocks, 4);
  });

  it('sizes new blocks in powers of two up to 64 KiB, in steps of 64 KiB above', () => {
    assert.equal(blockCapacity(1), 4096);
    assert.equal(blockCapacity(4097), 8192);
    assert.equal(blockCapacity(65_536), 65_536);
    assert.equal(blockCapacity(65_537), 131_072);
    assert.equal(blockCapacity(350_000), 393_216, 'a 350 KB emit holds 384 KiB, not 512');
    const pool = new EmitBuffers();
    assert.equal(pool.take(350_000, 1000).bytes.buffer.byteLength, 393_216);
  });

  it('a block from elsewhere is not taken', () => {
    const pool = new EmitBuffers();
    pool.give(Buffer.alloc(8192));
    assert.deepEqual(pool.keptStats, { blocks: 0, bytes: 0 });
  });
});

describe('record writer: emits released after their commit', () => {
  it('the next emit is written into the released emit’s memory, and its bytes are its own', () => {
    const writer = new RecordWriter();
    const first = writer.write([{ ts: 1, v: 'a' }], 1 << 20).records;
    const firstBytes = Buffer.from(first.bytes);
    const second = writer.write([{ ts: 2, v: 'b' }], 1 << 20).records;
    assert.notEqual(second.bytes.buffer, first.bytes.buffer, 'unreleased memory is not reused');
    assert.deepEqual(Buffer.from(first.bytes), firstBytes, 'writing the second emit left the first intact');
    writer.release(first);
    const third = writer.write([{ ts: 3, v: 'c' }], 1 << 20).records;
    assert.equal(third.bytes.buffer, first.bytes.buffer, 'released memory is reused');
    assert.deepEqual(Array.from(third.ends), [third.bytes.length]);
  });
});
