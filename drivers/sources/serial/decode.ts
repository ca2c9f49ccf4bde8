import type { Framing } from './options.ts';
import { parseNmea } from './nmea.ts';

/** Why a complete frame was rejected; each is a counter of its own and part of `bad_frames`. */
export type RejectReason = 'bad_checksum' | 'bad_sentence' | 'invalid_json' | 'no_match';

export type Decoded = { ok: true; fields: Record<string, unknown> } | { ok: false; reason: RejectReason; detail: string };

export type Decoder = (frame: Buffer) => Decoded;

const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** Text frames lose a trailing carriage return: "\r\n" devices are common and the "\r" is never data. */
function text(frame: Buffer): string {
  const end = frame.length > 0 && frame[frame.length - 1] === 0x0d ? frame.length - 1 : frame.length;
  return frame.toString('utf8', 0, end);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Turns one frame into record fields, or says why it cannot. Pure, so every mode is testable without a port. */
export function createDecoder(framing: Framing): Decoder {
  switch (framing.mode) {
    case 'lines':
      return (frame) => ({ ok: true, fields: { line: text(frame) } });
    case 'regex': {
      const pattern = new RegExp(framing.pattern);
      const numbers = framing.numbers;
      return (frame) => {
        const line = text(frame);
        const groups = pattern.exec(line)?.groups;
        if (!groups) return { ok: false, reason: 'no_match', detail: 'line does not match the pattern' };
        const fields: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(groups)) {
          if (value === undefined) continue;
          fields[key] = numbers && NUMBER.test(value) ? Number(value) : value;
        }
        return { ok: true, fields };
      };
    }
    case 'json_lines':
      return (frame) => {
        let value: unknown;
        try {
          value = JSON.parse(text(frame));
        } catch (err) {
          return { ok: false, reason: 'invalid_json', detail: (err as Error).message };
        }
        if (!isPlainObject(value))
          return { ok: false, reason: 'invalid_json', detail: `a JSON ${Array.isArray(value) ? 'array' : typeof value}, not an object` };
        return { ok: true, fields: value };
      };
    case 'fixed':
    case 'length_prefixed': {
      const hex = framing.encoding === 'hex';
      // Copy: the frame is a view into the framer's buffer, which is reused.
      return (frame) => ({ ok: true, fields: { data: hex ? frame.toString('hex') : new Uint8Array(frame) } });
    }
    case 'nmea': {
      const requireChecksum = framing.require_checksum;
      return (frame) => parseNmea(frame.toString('latin1'), requireChecksum);
    }
  }
}

/** Whether a frame is empty once its line end is gone: blank lines are skipped, not counted. */
export function isEmptyLine(framing: Framing, frame: Buffer): boolean {
  if (framing.mode !== 'lines' && framing.mode !== 'regex' && framing.mode !== 'json_lines') return false;
  return frame.length === 0 || (frame.length === 1 && frame[0] === 0x0d);
}
