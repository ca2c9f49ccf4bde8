/**
 * The heap the receiver's limits need (agent/receiver/limits.ts), from a config section or, before anything
 * is loaded, from the config file itself (agent/cli/bin.ts sizes the `receive` process with it).
 */
import { readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { parse } from 'yaml';
import { AgentError } from '../errors.ts';
import { parseSize } from '../util/units.ts';
import { DEFAULT_RECEIVER_LIMITS, type ReceiverLimits, receiverHeapMb } from './limits.ts';

interface LimitSettings {
  max_envelope_bytes?: unknown;
  max_batch_bytes?: unknown;
  max_records?: unknown;
  max_nesting?: unknown;
}

const size = (v: unknown, fallback: number): number => (typeof v === 'number' || typeof v === 'string' ? (parseSize(v) ?? fallback) : fallback);
const count = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : fallback);

/** The limits a `receiver` section sets, the defaults for what it leaves out. */
export function limitsOf(section: LimitSettings | undefined): ReceiverLimits {
  const d = DEFAULT_RECEIVER_LIMITS;
  return {
    maxEnvelopeBytes: size(section?.max_envelope_bytes, d.maxEnvelopeBytes),
    maxBatchBytes: size(section?.max_batch_bytes, d.maxBatchBytes),
    maxRecords: count(section?.max_records, d.maxRecords),
    maxNesting: count(section?.max_nesting, d.maxNesting),
  };
}

/**
 * Old space (MB) for `receive` with these arguments: read from the `--config`/`-c` file's receiver section,
 * leniently (an unreadable or invalid file gets the defaults' size here; the real load reports it next).
 */
export function receiveHeapMbFromArgs(args: readonly string[]): number {
  let file: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--config' || arg === '-c') file = args[i + 1];
    else if (arg.startsWith('--config=')) file = arg.slice('--config='.length);
  }
  let section: LimitSettings | undefined;
  try {
    if (file !== undefined) section = (parse(readFileSync(file, 'utf8')) as { receiver?: LimitSettings } | null)?.receiver ?? undefined;
  } catch {
    section = undefined;
  }
  return receiverHeapMb(limitsOf(section));
}

/**
 * Refuses to start a receiver whose heap is smaller than its limits need: it would run out of memory on the
 * first large legitimate batch, and again after every restart. The executable sizes itself; this catches a
 * cap set by hand (EDGE_AGENT_MAX_OLD_SPACE_MB, NODE_OPTIONS) below the need.
 */
export function checkHeapFits(limits: ReceiverLimits, origin: string): void {
  const needMb = receiverHeapMb(limits);
  const haveMb = Math.floor(getHeapStatistics().heap_size_limit / (1024 * 1024));
  if (haveMb < needMb) {
    throw new AgentError(
      'CONFIG_INVALID',
      `${origin}: receiver: its limits (max_batch_bytes ${limits.maxBatchBytes}, max_records ${limits.maxRecords}, max_envelope_bytes ${limits.maxEnvelopeBytes}) need a heap of ${needMb} MB, but it is capped at ${haveMb} MB: set EDGE_AGENT_MAX_OLD_SPACE_MB=${needMb} (or remove the cap) or lower the limits`,
    );
  }
}
