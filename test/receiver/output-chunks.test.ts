import { it } from 'node:test';
import assert from 'node:assert/strict';
import { toJsonChunks, toJsonLines } from '../../agent/receiver/output.ts';
import type { EnvelopeHeader } from '../../agent/envelope/header.ts';

// Large byte values are written as base64 in pieces (a 10 MiB BLOB must not become one heap string), and the
// bytes on disk are exactly the lines `toJsonLines` makes, including text that looks like the marker.
it('toJsonChunks writes the same bytes as toJsonLines, large byte values included', () => {
  const header = { device: 'gw', stream: 's', epoch: new Uint8Array(8), seq: 3 } as unknown as EnvelopeHeader;
  const big = new Uint8Array(300_001).map((_, i) => i % 251);
  const records = [
    { a: 1, b: big, c: 'x', d: [big.subarray(1), new Uint8Array(3)] },
    { n: 2, text: '\u0000ffffffffffffffff:0' },
    { nested: { big } },
    // Decoded byte strings can be Buffers, whose toJSON would make one array element per byte.
    { buf: Buffer.from(big), list: [Buffer.from([1, 2, 3])] },
  ];
  const chunks = toJsonChunks(header, records);
  assert.ok(chunks.length > 10, `written in pieces (${chunks.length})`);
  assert.ok(Math.max(...chunks.map((c) => c.length)) <= 70_000, 'no piece holds a whole large value');
  const written = Buffer.concat(chunks).toString();
  assert.equal(written, toJsonLines(header, records));
  const last = JSON.parse(written.trimEnd().split('\n').at(-1)!) as { record: { buf: { $base64: string }; list: { $base64: string }[] } };
  assert.deepEqual(Buffer.from(last.record.buf.$base64, 'base64'), Buffer.from(big));
  assert.deepEqual(last.record.list, [{ $base64: 'AQID' }]);
});
