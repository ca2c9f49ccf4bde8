/**
 * Register words to values. Modbus carries 16-bit registers, each big-endian on the wire; a wider value
 * spans several registers in the order the device chose (word order), and some devices also swap the bytes
 * within each register (byte order).
 */
export const VALUE_TYPES = ['bool', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'int64', 'uint64', 'float64'] as const;
export type ValueType = (typeof VALUE_TYPES)[number];

/** Registers one value of each type takes. */
export const TYPE_WORDS: Record<ValueType, number> = { bool: 0, int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, int64: 4, uint64: 4, float64: 4 };

export interface Layout {
  type: Exclude<ValueType, 'bool'>;
  wordOrder: 'big' | 'little';
  byteOrder: 'big' | 'little';
}

/** Reads one value from `words` registers of `bytes` (the registers as received, 2 bytes each). */
export function decodeValue(bytes: Buffer, layout: Layout): number | bigint {
  const words = TYPE_WORDS[layout.type];
  const value = Buffer.alloc(words * 2);
  for (let w = 0; w < words; w++) {
    const from = (layout.wordOrder === 'big' ? w : words - 1 - w) * 2;
    const hi = bytes[from]!;
    const lo = bytes[from + 1]!;
    value[w * 2] = layout.byteOrder === 'big' ? hi : lo;
    value[w * 2 + 1] = layout.byteOrder === 'big' ? lo : hi;
  }
  switch (layout.type) {
    case 'int16':
      return value.readInt16BE(0);
    case 'uint16':
      return value.readUInt16BE(0);
    case 'int32':
      return value.readInt32BE(0);
    case 'uint32':
      return value.readUInt32BE(0);
    case 'float32':
      return value.readFloatBE(0);
    case 'int64':
      return safe(value.readBigInt64BE(0));
    case 'uint64':
      return safe(value.readBigUInt64BE(0));
    case 'float64':
      return value.readDoubleBE(0);
  }
}

/** A 64-bit integer as a number where that is exact, else as a bigint (the queue encodes both). */
function safe(n: bigint): number | bigint {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

/** Applies scale and offset; a bigint only when neither changes it. */
export function scaled(raw: number | bigint, scale: number, offset: number): number | bigint {
  if (scale === 1 && offset === 0) return raw;
  return Number(raw) * scale + offset;
}
