import { decode as decodeCbor } from 'cbor-x';
import type { AgentRecord } from '../../../agent/sdk/index.ts';

export type BodyFormat = 'json' | 'json_lines' | 'cbor';

/** Why a request is refused, as answered: an HTTP status, a stable code, and words for the sender. */
export interface Refusal {
  readonly status: 400 | 401 | 404 | 413 | 415 | 503;
  readonly error: string;
  readonly message: string;
}

export type Decoded = { ok: true; records: AgentRecord[] } | ({ ok: false } & Refusal);

/** The body format a Content-Type names, or undefined for one not accepted. */
export function formatOf(contentType: string | undefined): BodyFormat | undefined {
  const type = (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
  switch (type) {
    case 'application/json':
      return 'json';
    case 'application/x-ndjson':
    case 'application/jsonl':
    case 'application/json-lines':
    case 'application/x-jsonlines':
      return 'json_lines';
    case 'application/cbor':
      return 'cbor';
    default:
      return undefined;
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function bad(message: string): Decoded {
  return { ok: false, status: 400, error: 'bad_body', message };
}

function isRecord(value: unknown): value is AgentRecord {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** An object is one record, an array of objects is several; anything else is a 400 naming where. */
function toRecords(value: unknown, what: string, maxRecords: number): Decoded {
  const list = Array.isArray(value) ? value : [value];
  if (list.length > maxRecords)
    return { ok: false, status: 413, error: 'too_many_records', message: `${list.length} records; at most ${maxRecords} per request` };
  for (let i = 0; i < list.length; i++) {
    if (!isRecord(list[i])) return bad(Array.isArray(value) ? `${what}: element ${i} is not an object` : `${what}: not an object or an array of objects`);
  }
  return { ok: true, records: list as AgentRecord[] };
}

/** Decodes a whole body (already bounded by max_body_bytes) into records, all or none. */
export function decodeBody(bytes: Uint8Array, format: BodyFormat, maxRecords: number): Decoded {
  if (format === 'cbor') {
    let value: unknown;
    try {
      value = decodeCbor(bytes);
    } catch (err) {
      return bad(`CBOR: ${(err as Error).message}`);
    }
    return toRecords(value, 'CBOR body', maxRecords);
  }
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return bad('body is not valid UTF-8');
  }
  if (format === 'json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return bad(`JSON: ${(err as Error).message}`);
    }
    return toRecords(value, 'JSON body', maxRecords);
  }
  const records: AgentRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      return bad(`line ${i + 1}: ${(err as Error).message}`);
    }
    if (!isRecord(value)) return bad(`line ${i + 1}: not a JSON object`);
    if (records.length >= maxRecords) return { ok: false, status: 413, error: 'too_many_records', message: `more than ${maxRecords} records per request` };
    records.push(value);
  }
  return { ok: true, records };
}
