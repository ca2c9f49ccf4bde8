import type { AgentRecord } from '../../../agent/sdk/index.ts';

export type PayloadFormat = 'auto' | 'json' | 'text' | 'bytes';

/** What a message's payload contributes to its record, or why it contributes nothing. */
export type Decoded = { ok: true; fields: AgentRecord } | { ok: false; reason: 'bad_json' };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder('utf-8');

function isPlainObject(value: unknown): value is AgentRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON object gives the record its fields; any other JSON value (array, number, string…) goes to `payload`. */
function fromJson(value: unknown): AgentRecord {
  return isPlainObject(value) ? value : { payload: value };
}

function tryJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/**
 * Turns a payload into record fields. `bytes` are copied: mqtt.js hands out views into its parser's buffers,
 * and the record outlives this message until its commit.
 */
export function decodePayload(payload: Uint8Array, format: PayloadFormat): Decoded {
  switch (format) {
    case 'bytes':
      return { ok: true, fields: { payload: new Uint8Array(payload) } };
    case 'text':
      // Malformed UTF-8 becomes U+FFFD rather than losing the message: a device's text is kept as best it can be.
      return { ok: true, fields: { payload: lenientUtf8.decode(payload) } };
    case 'json': {
      const parsed = tryJson(lenientUtf8.decode(payload));
      return parsed.ok ? { ok: true, fields: fromJson(parsed.value) } : { ok: false, reason: 'bad_json' };
    }
    case 'auto': {
      let text: string;
      try {
        text = strictUtf8.decode(payload);
      } catch {
        return { ok: true, fields: { payload: new Uint8Array(payload) } };
      }
      const parsed = tryJson(text);
      return { ok: true, fields: parsed.ok ? fromJson(parsed.value) : { payload: text } };
    }
  }
}
