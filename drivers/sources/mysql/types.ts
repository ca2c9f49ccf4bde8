import type { ConnectionOptions } from 'mysql2';

type TypeCastFunction = Exclude<NonNullable<ConnectionOptions['typeCast']>, boolean>;

function bytes(buffer: Buffer | null): Uint8Array | null {
  return buffer === null ? null : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** BIGINT: a number while exact, a BigInt beyond 2^53 (the queue's codec writes it as a CBOR integer). */
export function integer(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

/**
 * Values as CBOR-friendly JS values with nothing rounded or invented (see README.md): DECIMAL as text,
 * DATETIME as ISO 8601 without a zone, TIMESTAMP (an instant; the session runs in UTC) as ISO 8601 with "Z",
 * binary strings as bytes.
 */
export const typeCast: TypeCastFunction = (field, next) => {
  switch (field.type) {
    case 'LONGLONG': {
      const text = field.string();
      return text === null ? null : integer(text);
    }
    case 'NEWDECIMAL':
    case 'DECIMAL':
      return field.string();
    case 'DATETIME':
    case 'TIMESTAMP': {
      const text = field.string();
      if (text === null) return null;
      if (text.startsWith('0000-00-00')) return text; // MySQL's zero date is not a date: its own text, unchanged
      const iso = text.replace(' ', 'T');
      return field.type === 'TIMESTAMP' ? `${iso}Z` : iso;
    }
    case 'DATE':
      return field.string();
    case 'BIT':
      return bytes(field.buffer());
    default: {
      // BLOB/BINARY/VARBINARY (binary collation) arrive as a Buffer; TEXT as a string; JSON already parsed.
      const value = next();
      return Buffer.isBuffer(value) ? bytes(value) : value;
    }
  }
};

/** A cursor timestamp as the record carries it → the literal the server compares with DATETIME/TIMESTAMP. */
export function timeParam(value: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d(?:\.\d+)?)Z?$/.exec(value);
  return m ? `${m[1]} ${m[2]}` : value;
}
