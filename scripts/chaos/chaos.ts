/**
 * Chaos run: a real agent and receiver under random faults (SIGKILLs, broker restarts with and without
 * persistence, link cuts, power cuts, disk full), against ground truth it writes itself. See
 * docs/operations.md, "Chaos runs".
 *
 *   npm run chaos -- [--duration 30m] [--seed N] [--faults agent-kill,receiver-kill,…] [--rate 100]
 *                    [--stall 30s] [--drain 120s] [--postgres postgres@127.0.0.1:5432] [--keep]
 *
 * Exit code 1 when any accepted record was lost or arrived twice after the documented dedup; 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import { chaosFailed, formatChaosReport } from './chaos-report.ts';
import { FAULT_KINDS, runChaos, type FaultKind } from './chaos-run.ts';
import { newSeed } from './rng.ts';

function ms(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!m) usage(`${what} must be a duration like 500ms, 30s, 10m, 1h (got ${text})`);
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

/** `--postgres user@host:port` (trust or .pgpass authentication: no password on the command line). */
function postgresServer(text: string): { host: string; port: number; user: string } {
  const m = /^(?:([^@]+)@)?([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) usage(`--postgres must be [user@]host[:port] (got ${text})`);
  return { user: m[1] ?? 'postgres', host: m[2]!, port: Number(m[3] ?? 5432) };
}

function usage(message: string): never {
  process.stderr.write(`chaos: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5m' },
    seed: { type: 'string' },
    faults: { type: 'string', default: FAULT_KINDS.join(',') },
    rate: { type: 'string', default: '100' },
    stall: { type: 'string', default: '30s' },
    drain: { type: 'string', default: '120s' },
    keep: { type: 'boolean', default: false },
    postgres: { type: 'string' },
  },
});
const faults = values.faults.split(',').filter(Boolean) as FaultKind[];
const unknown = faults.filter((f) => !(FAULT_KINDS as readonly string[]).includes(f));
if (unknown.length) usage(`unknown fault ${unknown.join(', ')}; known: ${FAULT_KINDS.join(', ')}`);
const seed = values.seed === undefined ? newSeed() : Number(values.seed);
if (!Number.isInteger(seed) || seed < 0) usage(`--seed must be a non-negative integer (got ${values.seed})`);
const rate = Number(values.rate);
if (!(rate > 0)) usage(`--rate must be a positive number of records per second per source (got ${values.rate})`);

process.stdout.write(`chaos seed ${seed} (repeat with --seed ${seed}); faults: ${faults.join(', ')}\n`);
const result = await runChaos({
  durationMs: ms(values.duration, '--duration'),
  seed,
  faults,
  rate,
  stallMs: ms(values.stall, '--stall'),
  drainMs: ms(values.drain, '--drain'),
  keep: values.keep,
  log: (line) => process.stdout.write(`${line}\n`),
  ...(values.postgres ? { postgres: postgresServer(values.postgres) } : {}),
});
process.stdout.write(`${formatChaosReport(result)}\n`);
if (values.keep) process.stdout.write(`run directory kept: ${result.dir}\n`);
process.exit(chaosFailed(result) ? 1 : 0);
