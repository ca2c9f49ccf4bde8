/**
 * A small reader of HL7 v2 messages in their usual (ER7, pipe-and-hat) encoding: segments, fields,
 * repetitions, components, sub-components and escape sequences, with the delimiters the message declares in
 * MSH-1 and MSH-2. It reads structure only; it does not validate a message against a version's profile (the
 * centre can), so any v2.x message from any vendor is accepted as long as its MSH is sound.
 */
import { decoderFor } from './charset.ts';

export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

export interface Segment {
  /** The segment id, e.g. `PID`. */
  readonly id: string;
  /** Fields by HL7 number: `fields[n]` is SEG-n (raw, still escaped). For MSH, MSH-1 is the separator itself. */
  readonly fields: readonly string[];
}

export interface ParsedMessage {
  readonly delimiters: Delimiters;
  readonly segments: readonly Segment[];
  /** The decoded text, segments separated by \r. */
  readonly text: string;
  /** The MSH-18 value that chose the decoder (empty when the default was used). */
  readonly charset: string;
}

/** Why a message cannot be read; `reject` (AR) when it is not an HL7 message we can take at all, else `error` (AE). */
export class Hl7ParseError extends Error {
  readonly severity: 'reject' | 'error';
  constructor(severity: 'reject' | 'error', message: string) {
    super(message);
    this.severity = severity;
  }
}

const SEGMENT_ID = /^[A-Z][A-Z0-9]{2}$/;

/** Splits text into segments: \r is the separator; \n and \r\n are taken too (files moved between systems). */
function segmentLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/).filter((line) => line.length > 0);
}

/** Reads MSH from the bytes (ASCII by rule) to learn the delimiters and MSH-18. */
export function readHeader(bytes: Buffer): { delimiters: Delimiters; fields: string[] } {
  const end = bytes.findIndex((b) => b === 0x0d || b === 0x0a);
  const line = bytes.subarray(0, end < 0 ? bytes.length : end).toString('latin1');
  if (!line.startsWith('MSH'))
    throw new Hl7ParseError('reject', `the message does not start with an MSH segment (it starts with ${JSON.stringify(line.slice(0, 8))})`);
  const field = line[3];
  const encoding = line.slice(4, line.indexOf(field ?? '|', 4));
  if (!field || encoding.length < 4 || new Set([field, ...encoding.slice(0, 4)]).size !== 5 || /[A-Za-z0-9\s]/.test(field + encoding.slice(0, 4))) {
    throw new Hl7ParseError('reject', 'MSH-1/MSH-2 do not declare five distinct delimiters (field separator and encoding characters such as |^~\\&)');
  }
  const delimiters: Delimiters = { field, component: encoding[0]!, repetition: encoding[1]!, escape: encoding[2]!, subcomponent: encoding[3]! };
  return { delimiters, fields: splitFields(line, delimiters) };
}

function splitFields(line: string, d: Delimiters): string[] {
  const parts = line.split(d.field);
  // MSH-1 is the separator itself: put it back as a field so MSH-n is fields[n] as for other segments.
  return parts[0] === 'MSH' ? ['MSH', d.field, ...parts.slice(1)] : parts;
}

/** Decodes and splits a message. `defaultCharset` applies when MSH-18 is empty. */
export function parseMessage(bytes: Buffer, defaultCharset: string): ParsedMessage {
  const header = readHeader(bytes);
  const declared = (header.fields[18] ?? '').split(header.delimiters.repetition)[0]!.trim();
  const decoder = decoderFor(declared || defaultCharset);
  if (!decoder) throw new Hl7ParseError('reject', `MSH-18 character set ${JSON.stringify(declared)} is not one this gateway reads`);
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new Hl7ParseError('error', `the message is not valid ${declared || defaultCharset} (MSH-18${declared ? '' : ' empty, the default'})`);
  }
  const segments: Segment[] = [];
  for (const line of segmentLines(text)) {
    const fields = splitFields(line, header.delimiters);
    const id = fields[0]!;
    if (!SEGMENT_ID.test(id)) throw new Hl7ParseError('error', `segment ${segments.length + 1} has no valid segment id (${JSON.stringify(id.slice(0, 8))})`);
    segments.push({ id, fields });
  }
  return { delimiters: header.delimiters, segments, text: segmentLines(text).join('\r'), charset: declared };
}

/** Replaces HL7 escape sequences in a leaf value (a component or sub-component). */
export function unescapeHl7(value: string, d: Delimiters): string {
  if (!value.includes(d.escape)) return value;
  const e = d.escape.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return value.replace(new RegExp(`${e}([^${e}]*)${e}`, 'g'), (whole, code: string) => {
    switch (code) {
      case 'F':
        return d.field;
      case 'S':
        return d.component;
      case 'T':
        return d.subcomponent;
      case 'R':
        return d.repetition;
      case 'E':
        return d.escape;
      case '.br':
        return '\n';
      case 'H':
      case 'N':
        return ''; // highlighting on/off: no meaning in data
    }
    if (/^X(?:[0-9A-Fa-f]{2})+$/.test(code)) return Buffer.from(code.slice(1), 'hex').toString('latin1');
    return whole; // character set switches and formatting commands stay as sent
  });
}

/** The repetitions of a raw field, each split into components, each component unescaped (sub-components kept). */
export function repetitions(raw: string | undefined, d: Delimiters): string[][] {
  if (raw === undefined || raw === '') return [];
  return raw.split(d.repetition).map((rep) => rep.split(d.component).map((c) => unescapeHl7(c, d)));
}

/** The first repetition's components of a raw field. */
export function components(raw: string | undefined, d: Delimiters): string[] {
  return repetitions(raw, d)[0] ?? [];
}
