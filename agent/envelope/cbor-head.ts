/**
 * The head of a CBOR array (RFC 8949, major type 4) in its shortest form, as cbor-x writes it: a batch body is
 * this head followed by its records' bytes as the record writer wrote them (agent/queue/chunking.ts).
 */

/** Bytes of a CBOR array head for `count` elements. */
export function arrayHeadBytes(count: number): number {
  return count < 0x18 ? 1 : count < 0x100 ? 2 : count < 0x10000 ? 3 : 5;
}

/** Writes a CBOR array head for `count` elements at `at`; returns the bytes written. */
export function writeArrayHead(target: Uint8Array, at: number, count: number): number {
  if (count < 0x18) {
    target[at] = 0x80 | count;
    return 1;
  }
  if (count < 0x100) {
    target[at] = 0x98;
    target[at + 1] = count;
    return 2;
  }
  if (count < 0x10000) {
    target[at] = 0x99;
    target[at + 1] = count >> 8;
    target[at + 2] = count & 0xff;
    return 3;
  }
  target[at] = 0x9a;
  new DataView(target.buffer, target.byteOffset, target.byteLength).setUint32(at + 1, count);
  return 5;
}
