/**
 * The ingest encode path alone: records per second, in chunks of 500, on one core. By default
 * agent/envelope/codec.ts `encodeRecords` (cbor-x after the ingest repair: what the queue ran at each commit
 * before, and what the general path still runs); with --writer the queue's one-walk writer
 * (agent/envelope/record-writer.ts, as `Queue.write` calls it at hand-over). Used to measure what a change to
 * the encode walk (integers as integers, text repaired to well-formed UTF-8) costs.
 *
 *   node scripts/bench/encode-bench.ts [--records 200000] [--repeat 7] [--chunk 500] [--text] [--realistic] [--writer]
 *
 *   --text        records with a few more text fields (a longer free-text field, non-ASCII), to weigh the text check
 *   --realistic   the synthetic source's `realistic` shape at 120 B (what scripts/bench/cpu-bench.ts real-120 sends)
 *   --writer      the one-walk writer instead of encodeRecords
 *
 * Prints the median and the range of `repeat` runs, after one warm-up run.
 */
import { encodeRecords } from '../../agent/envelope/codec.ts';
import { RecordWriter } from '../../agent/envelope/record-writer.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';
import { recordMaker } from '../../drivers/sources/synthetic/shapes.ts';
import { numberArg, parseArgs } from './proc.ts';

const args = parseArgs(process.argv.slice(2));
const total = numberArg(args, 'records', 200_000);
const repeat = numberArg(args, 'repeat', 7);
const chunk = numberArg(args, 'chunk', 500);
const text = args.has('text');
const realistic = args.has('realistic') ? recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 120 }) : undefined;
const writer = args.has('writer') ? new RecordWriter() : undefined;

/** Shaped like drivers/sources/synthetic's records (and, with --text, with some free text added). */
function makeRecords(from: number, count: number): AgentRecord[] {
  const now = 1767225600000;
  if (realistic) return Array.from({ length: count }, (_, i) => realistic(from + i + 1, now, count - 1 - i));
  return Array.from({ length: count }, (_, i) => {
    const n = from + i;
    const record: AgentRecord = {
      n,
      ts: now + n,
      sensor: `sensor-${n % 8}`,
      value: Math.round((20 + Math.sin(n / 50) * 5 + (n % 7) / 10) * 100) / 100,
      unit: 'C',
    };
    if (text) {
      record.note = `Messung ${n}: Temperatur im Schaltschrank über dem Grenzwert, Lüfter läuft`;
      record.tags = { site: 'Nord', line: `L${n % 3}`, operator: 'Müller' };
    }
    return record;
  });
}

function run(): number {
  // Records are built outside the timed part: encodeRecords works in place, so each run gets fresh ones.
  const chunks: AgentRecord[][] = [];
  for (let i = 0; i < total; i += chunk) chunks.push(makeRecords(i, Math.min(chunk, total - i)));
  const started = process.hrtime.bigint();
  let bytes = 0;
  if (writer) for (const c of chunks) bytes += writer.write(c, Number.MAX_SAFE_INTEGER).records.bytes.length;
  else for (const c of chunks) bytes += encodeRecords(c).length;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (bytes === 0) throw new Error('nothing encoded');
  return total / seconds;
}

run(); // warm-up
const rates = Array.from({ length: repeat }, run).sort((a, b) => a - b);
const k = (r: number) => `${Math.round(r / 1000)}k`;
console.log(
  `${writer ? 'RecordWriter.write' : 'encodeRecords'}: ${k(rates[rates.length >> 1]!)} records/s median (${k(rates[0]!)}–${k(rates[rates.length - 1]!)}), ${repeat} runs of ${total} records in chunks of ${chunk}${text ? ', text-heavy records' : ''}${realistic ? ', realistic 120 B records' : ''}`,
);
