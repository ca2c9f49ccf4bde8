/**
 * Batch compression alone: CPU per 1000-record chunk and wire bytes per record, for each method and level the
 * agent could default to, on chunks of the synthetic source's realistic records (per-record timestamps, noisy
 * floats, hundreds of sensor ids) as the queue stores them. What chose `DEFAULT_COMPRESSION` (codec.ts).
 *
 *   node scripts/bench/codec-bench.ts [--bytes 120] [--chunks 50] [--rounds 7]
 *
 * The methods run alternated, round by round; prints each one's median and minimum µs per chunk (process CPU).
 */
import { compress, encodeRecords, type CodecSettings } from '../../agent/envelope/codec.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';
import { recordMaker } from '../../drivers/sources/synthetic/shapes.ts';
import { numberArg, parseArgs } from './proc.ts';
import { median } from './format.ts';

const args = parseArgs(process.argv.slice(2));
const recordBytes = numberArg(args, 'bytes', 120);
const chunkCount = numberArg(args, 'chunks', 50);
const rounds = numberArg(args, 'rounds', 7);
const RECORDS_PER_CHUNK = 1000;

const make = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: recordBytes });
const now = Date.now();
const chunks: Uint8Array[] = [];
for (let c = 0, n = 0; c < chunkCount; c++) {
  const records: AgentRecord[] = [];
  for (let i = 0; i < RECORDS_PER_CHUNK; i++) records.push(make(++n, now, i) as AgentRecord);
  chunks.push(encodeRecords(records));
}
const cborPerRecord = chunks.reduce((sum, c) => sum + c.length, 0) / (chunkCount * RECORDS_PER_CHUNK);

const methods: [string, CodecSettings][] = [
  ['deflate 1', { compression: 'deflate', level: 1 }],
  ['zstd 1', { compression: 'zstd', level: 1 }],
  ['zstd 2', { compression: 'zstd', level: 2 }],
  ['zstd 3', { compression: 'zstd', level: 3 }],
  ['brotli 4', { compression: 'brotli', level: 4 }],
];
const micros = new Map<string, number[]>();
const wire = new Map<string, number>();
for (let round = 0; round < rounds; round++) {
  for (const [name, settings] of methods) {
    const before = process.cpuUsage();
    let bytes = 0;
    for (const chunk of chunks) bytes += compress(chunk, settings).length;
    const used = process.cpuUsage(before);
    micros.set(name, [...(micros.get(name) ?? []), (used.user + used.system) / chunkCount]);
    wire.set(name, bytes / (chunkCount * RECORDS_PER_CHUNK));
  }
}
console.log(`${recordBytes} B records, ${cborPerRecord.toFixed(1)} B of CBOR each; ${chunkCount} chunks of ${RECORDS_PER_CHUNK}, ${rounds} rounds`);
for (const [name] of methods) {
  const runs = micros.get(name)!;
  console.log(
    `${name.padEnd(10)} ${median(runs).toFixed(0).padStart(6)} µs per chunk (min ${Math.min(...runs).toFixed(0)}), ${wire.get(name)!.toFixed(2)} B per record`,
  );
}
