/**
 * The queue export formats (docs/operations.md, "Queue tools"), written by `queue export` and `queue salvage`
 * and read by `queue replay`.
 *
 * - NDJSON: a header line, then one line per record naming its unit (stream, seq or null, first and last
 *   chunk, commit time, index and count within the unit). For reading with jq and grep; values JSON lacks are
 *   written as the receiver writes them ({"$base64"}, {"$float"}, {"$simple"}); big integers and dates come
 *   back from JSON as text, so an exact replay of such records wants CBOR.
 * - CBOR: an RFC 8742 CBOR sequence: the header map, then one array per unit
 *   [stream, seq | null, first_chunk, last_chunk, created, records] where `records` is a byte string holding
 *   the unit's records as one CBOR array, exactly as the queue encodes a batch body. Lossless.
 */
import { createReadStream } from 'node:fs';
import { DecoderStream, Encoder } from 'cbor-x';
import type { AgentRecord } from '../domain/record.ts';
import { CborSimple } from '../envelope/cbor-decode.ts';
import { decodeRecords, encodeRecords } from '../envelope/codec.ts';
import { AgentError } from '../errors.ts';
import type { QueueUnit } from './tool-units.ts';

export const EXPORT_FORMATS = ['ndjson', 'cbor'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportHeader {
  format: 'edge-agent-queue-export';
  version: 1;
  /** The queue's epoch (16 hex digits): a batch's sequence means something only within it. */
  epoch: string;
  device: string | null;
  /** The file the units were read from. */
  source: string;
  exported_at: string;
  /** `salvage` when read from a damaged file. */
  kind: 'export' | 'salvage';
}

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, structuredClone: false, tagUint8Array: false });

/** Same mapping as the receiver's output (docs/wire-format.md, "Receiver output"). */
function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : { $float: String(raw) };
  if (raw === undefined) return null;
  if (raw instanceof Uint8Array) return { $base64: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
  if (typeof raw === 'bigint') return raw.toString();
  if (raw instanceof CborSimple) return { $simple: raw.value };
  if (raw instanceof Map) return Object.fromEntries(raw);
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 1) return value;
  const v = value as Record<string, unknown>;
  if (typeof v.$base64 === 'string') return new Uint8Array(Buffer.from(v.$base64, 'base64'));
  if (typeof v.$float === 'string') return Number(v.$float);
  if (typeof v.$simple === 'number') return new CborSimple(v.$simple);
  return value;
}

/** The bytes of the header, first in the file. */
export function encodeHeader(header: ExportHeader, format: ExportFormat): Uint8Array {
  return format === 'ndjson' ? Buffer.from(`${JSON.stringify(header)}\n`) : cbor.encode(header);
}

/** The bytes of one unit. */
export function encodeUnit(unit: QueueUnit, format: ExportFormat): Uint8Array {
  if (format === 'cbor') {
    const body = encodeRecords(unit.records);
    return cbor.encode([unit.stream, unit.seq, unit.firstChunk, unit.lastChunk, unit.created, body]);
  }
  let out = '';
  const n = unit.records.length;
  for (let i = 0; i < n; i++) {
    const line = {
      stream: unit.stream,
      seq: unit.seq,
      chunk: unit.firstChunk,
      last_chunk: unit.lastChunk,
      created: unit.created,
      i,
      n,
      record: unit.records[i],
    };
    out += `${JSON.stringify(line, replacer)}\n`;
  }
  return Buffer.from(out);
}

function invalid(file: string, where: string, what: string): AgentError {
  return new AgentError('QUEUE_EXPORT_INVALID', `${file}: ${where}: ${what}`);
}

function checkHeader(file: string, value: unknown): ExportHeader {
  const h = value as Partial<ExportHeader> | null;
  if (h?.format !== 'edge-agent-queue-export') throw invalid(file, 'start', 'not an edge-agent queue export (no header)');
  if (h.version !== 1) throw invalid(file, 'header', `export version ${String(h.version)} is not one this build reads (1)`);
  if (typeof h.epoch !== 'string') throw invalid(file, 'header', 'no epoch');
  return h as ExportHeader;
}

/** Which format a file is in, from its first byte: `{` is NDJSON, a CBOR map (0xa0–0xbf) is CBOR. */
async function sniff(file: string): Promise<ExportFormat> {
  for await (const chunk of createReadStream(file, { start: 0, end: 0 })) {
    const first = (chunk as Buffer)[0];
    if (first === 0x7b) return 'ndjson';
    if (first !== undefined && first >= 0xa0 && first <= 0xbf) return 'cbor';
  }
  throw invalid(file, 'start', 'neither an NDJSON nor a CBOR queue export');
}

export interface ExportReader {
  header: ExportHeader;
  units: AsyncGenerator<QueueUnit>;
}

/** Reads an export file unit by unit (one unit in memory at a time). */
export async function readExport(file: string): Promise<ExportReader> {
  const format = await sniff(file);
  const source = format === 'ndjson' ? ndjsonItems(file) : cborItems(file);
  const first = await source.next();
  if (first.done) throw invalid(file, 'start', 'empty file');
  const header = checkHeader(file, first.value);
  return { header, units: format === 'ndjson' ? ndjsonUnits(file, source) : cborUnits(file, source) };
}

async function* ndjsonItems(file: string): AsyncGenerator<unknown> {
  let lineNo = 0;
  // node:readline is loaded by the import that reads a file, not at every start of the executable.
  for await (const line of process.getBuiltinModule('node:readline').createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY })) {
    lineNo++;
    if (line.trim() === '') continue;
    try {
      yield Object.assign(JSON.parse(line, reviver) as object, { [LINE]: lineNo });
    } catch (cause) {
      if (cause instanceof SyntaxError) throw new AgentError('QUEUE_EXPORT_INVALID', `${file}:${lineNo}: not JSON`, { cause });
      throw cause;
    }
  }
}

const LINE = Symbol('line');

interface RecordLine {
  stream: string;
  seq: number | null;
  chunk: number;
  last_chunk: number;
  created: number;
  i: number;
  n: number;
  record: AgentRecord;
  [LINE]: number;
}

async function* ndjsonUnits(file: string, items: AsyncGenerator<unknown>): AsyncGenerator<QueueUnit> {
  let unit: QueueUnit | undefined;
  let expected = 0;
  for await (const item of items) {
    const line = item as RecordLine;
    const where = `line ${line[LINE]}`;
    if (typeof line.stream !== 'string' || !Number.isSafeInteger(line.chunk) || !Number.isSafeInteger(line.n) || typeof line.record !== 'object') {
      throw invalid(file, where, 'not a record line (stream, chunk, n and record required)');
    }
    if (unit && (unit.stream !== line.stream || unit.firstChunk !== line.chunk)) {
      if (unit.records.length !== expected)
        throw invalid(file, where, `unit ${unit.stream}/${unit.firstChunk} has ${unit.records.length} of its ${expected} records`);
      yield unit;
      unit = undefined;
    }
    if (!unit) {
      unit = {
        stream: line.stream,
        seq: line.seq ?? null,
        firstChunk: line.chunk,
        lastChunk: line.last_chunk ?? line.chunk,
        created: line.created ?? 0,
        storedBytes: 0,
        count: line.n,
        records: [],
      };
      expected = line.n;
    }
    if (line.i !== unit.records.length)
      throw invalid(file, where, `record ${line.i} of unit ${unit.stream}/${unit.firstChunk} out of order (expected ${unit.records.length})`);
    unit.records.push(line.record);
  }
  if (unit) {
    if (unit.records.length !== expected)
      throw invalid(file, 'end', `unit ${unit.stream}/${unit.firstChunk} has ${unit.records.length} of its ${expected} records (file cut short?)`);
    yield unit;
  }
}

async function* cborItems(file: string): AsyncGenerator<unknown> {
  const decoder = new DecoderStream({ useRecords: false, mapsAsObjects: true });
  const input = createReadStream(file);
  input.on('error', (err) => decoder.destroy(err));
  input.pipe(decoder);
  try {
    for await (const item of decoder) yield item;
  } catch (cause) {
    throw new AgentError('QUEUE_EXPORT_INVALID', `${file}: not a CBOR sequence: ${(cause as Error).message}`, { cause });
  }
  if ((decoder as unknown as { incompleteBuffer?: Buffer }).incompleteBuffer) throw invalid(file, 'end', 'the last unit is cut short');
}

async function* cborUnits(file: string, items: AsyncGenerator<unknown>): AsyncGenerator<QueueUnit> {
  let index = 0;
  for await (const item of items) {
    index++;
    const where = `unit ${index}`;
    if (!Array.isArray(item) || item.length !== 6) throw invalid(file, where, 'not [stream, seq, first_chunk, last_chunk, created, records]');
    const [stream, seq, first, last, created, body] = item as [unknown, unknown, unknown, unknown, unknown, unknown];
    if (typeof stream !== 'string' || !(body instanceof Uint8Array) || typeof first !== 'number') throw invalid(file, where, 'bad field types');
    let records: AgentRecord[];
    try {
      records = decodeRecords(body, { text: 'replace' });
    } catch (cause) {
      throw new AgentError('QUEUE_EXPORT_INVALID', `${file}: ${where}: its records do not decode`, { cause });
    }
    yield {
      stream,
      seq: typeof seq === 'number' ? seq : null,
      firstChunk: first,
      lastChunk: Number(last),
      created: Number(created),
      storedBytes: 0,
      count: records.length,
      records,
    };
  }
}
