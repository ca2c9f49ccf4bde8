/**
 * What the receiver's limits cost and what they guard against (agent/receiver/limits.ts). Prints:
 * - CPU per batch of the walk that checks records and nesting before decoding, beside decoding and writing
 *   JSON lines, for 1000 realistic sensor records;
 * - CPU until a 1 KB "bomb" (a million empty maps) is refused;
 * - with `--heap`, whether the costliest batches decode and serialise under given old-space sizes, each in a
 *   child process (`default`: a default gateway's largest, 1000 records in 256 KiB of empty byte strings;
 *   `bytes`: receiver.max_batch_bytes of them; `records`: 100,000 empty records).
 *
 *   node scripts/bench/receiver-limits.ts [--heap 32,112,176]
 */
import { spawnSync } from 'node:child_process';
import { scanBody } from '../../agent/envelope/cbor-scan.ts';
import { decodeBody } from '../../agent/envelope/cbor-decode.ts';
import { encodeRecords } from '../../agent/envelope/codec.ts';
import { DEFAULT_RECEIVER_LIMITS } from '../../agent/envelope/limits.ts';
import { toJsonLines } from '../../agent/receiver/output.ts';

const HEADER = { device: 'gw-0001', stream: 'telemetry', epoch: new Uint8Array(8), seq: 1 } as never;
const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

function batchOf(count: number, record: Uint8Array): Uint8Array {
  const head = Buffer.from([0x9a, 0, 0, 0, 0]);
  head.writeUInt32BE(count, 1);
  return Buffer.concat([head, ...Array.from({ length: count }, () => record)]);
}

function byteStrings(n: number): Uint8Array {
  const head = Buffer.from([0xa1, 0x61, 0x62, 0x9a, 0, 0, 0, 0]);
  head.writeUInt32BE(n, 4);
  return Buffer.concat([head, Buffer.alloc(n, 0x40)]);
}

const CASES: Record<string, () => Uint8Array> = {
  default: () => batchOf(1000, byteStrings(254)),
  bytes: () => batchOf(1, byteStrings(DEFAULT_RECEIVER_LIMITS.maxBatchBytes - 13)),
  records: () => batchOf(100_000, Buffer.from([0xa0])),
};

if (process.argv[2] === '--child') {
  const body = CASES[process.argv[3]!]!();
  const records = decodeBody(body, { text: 'strict', maxRecords: DEFAULT_RECEIVER_LIMITS.maxRecords, maxNesting: DEFAULT_RECEIVER_LIMITS.maxNesting });
  const bytes = Buffer.from(toJsonLines(HEADER, records));
  process.stdout.write(`${body.length} B of CBOR → ${bytes.length} B of JSON lines`);
  process.exit(0);
}

const realistic = Array.from({ length: 1000 }, (_, i) => ({
  id: `sensor-${i % 50}`,
  ts: 1767225600000 + i,
  t: 20 + Math.random(),
  h: Math.random() * 100,
  ok: true,
}));
const body = encodeRecords(realistic);
const N = 500;
let t = process.cpuUsage();
for (let i = 0; i < N; i++) scanBody(body, DEFAULT_RECEIVER_LIMITS.maxRecords, DEFAULT_RECEIVER_LIMITS.maxNesting);
const scan = cpuMs(t) / N;
t = process.cpuUsage();
let decoded: Record<string, unknown>[] = [];
for (let i = 0; i < N; i++) decoded = decodeBody(body, { text: 'strict' });
const decode = cpuMs(t) / N;
t = process.cpuUsage();
for (let i = 0; i < N; i++) Buffer.from(toJsonLines(HEADER, decoded));
const json = cpuMs(t) / N;
console.log(
  `1000 sensor records, ${body.length} B of CBOR: walk ${scan.toFixed(3)} ms, decode ${decode.toFixed(3)} ms, JSON lines ${json.toFixed(3)} ms CPU per batch`,
);

const bomb = Buffer.concat([Buffer.from([0x9f]), Buffer.alloc(1_000_000, 0xa0), Buffer.from([0xff])]);
t = process.cpuUsage();
try {
  scanBody(bomb, DEFAULT_RECEIVER_LIMITS.maxRecords, DEFAULT_RECEIVER_LIMITS.maxNesting);
} catch {
  console.log(`a million empty maps refused after ${cpuMs(t).toFixed(2)} ms CPU`);
}

const heapAt = process.argv.indexOf('--heap');
if (heapAt > 0) {
  for (const mb of process.argv[heapAt + 1]!.split(',').map(Number)) {
    for (const name of Object.keys(CASES)) {
      const r = spawnSync(process.execPath, [`--max-old-space-size=${mb}`, '--max-semi-space-size=1', import.meta.filename, '--child', name], {
        encoding: 'utf8',
      });
      console.log(
        `old space ${mb} MB, ${name}: ${r.status === 0 ? `ok (${r.stdout})` : /heap out of memory/.test(r.stderr) ? 'out of memory' : `failed (${r.status})`}`,
      );
    }
  }
}
