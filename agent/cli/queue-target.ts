/**
 * What the queue commands share: which file they work on (`--config`: the agent's queue; `--file`: any queue
 * file, a stopped one or a quarantined `*.corrupt-*`), the selection options, and an output that waits for
 * the reader (a pipe into ssh or gzip) instead of buffering the export in memory.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { type Command, Option } from 'commander';
import { loadConfigFile } from '../app.ts';
import { configPaths } from '../config/paths.ts';
import { type CodecSettings, DEFAULT_COMPRESSION } from '../envelope/codec.ts';
import { AgentError } from '../errors.ts';
import type { Selection } from '../queue/tool-units.ts';

export interface TargetOptions {
  config?: string;
  file?: string;
}

export interface SelectionOptions {
  stream?: string[];
  since?: string;
  until?: string;
  seq?: string;
}

export interface Target {
  path: string;
  device: string | null;
  codec: CodecSettings;
}

export function addTargetOptions(command: Command): Command {
  return command
    .option('-c, --config <FILE>', "the agent's config: its queue file (queue.path in data_dir)")
    .option('-f, --file <PATH>', 'a queue file by path: a stopped queue, a copy, or a quarantined *.corrupt-* file');
}

export function addSelectionOptions(command: Command): Command {
  return command
    .addOption(new Option('-s, --stream <NAME...>', 'only these streams (repeatable)'))
    .option('--since <TIME>', 'only records committed at or after TIME (ISO 8601, or ms since 1970)')
    .option('--until <TIME>', 'only records committed before TIME (ISO 8601, or ms since 1970)')
    .option('--seq <FROM-TO>', 'only recorded batches with sequence FROM…TO (inclusive; per stream); leaves out records not yet in a batch');
}

export function resolveTarget(options: TargetOptions): Target {
  if ((options.config === undefined) === (options.file === undefined)) {
    throw new AgentError('USAGE', "give either --config FILE (the agent's queue) or --file PATH (a queue file)");
  }
  if (options.file !== undefined) return { path: options.file, device: null, codec: { compression: DEFAULT_COMPRESSION, level: undefined } };
  const loaded = loadConfigFile(options.config!);
  return {
    path: configPaths(loaded).queue,
    device: loaded.config.device?.id ?? null,
    codec: { compression: loaded.config.batch.compression, level: loaded.config.batch.level },
  };
}

function parseTime(text: string, option: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms))
    throw new AgentError('USAGE', `${option} ${JSON.stringify(text)} is not a time (ISO 8601 such as 2026-12-06T06:00:00Z, or ms since 1970)`);
  return ms;
}

export function parseSelection(options: SelectionOptions): Selection {
  const selection: Selection = {};
  if (options.stream) selection.streams = options.stream;
  if (options.since !== undefined) selection.since = parseTime(options.since, '--since');
  if (options.until !== undefined) selection.until = parseTime(options.until, '--until');
  if (options.seq !== undefined) {
    const m = /^(\d+)?-(\d+)?$/.exec(options.seq) ?? /^(\d+)()$/.exec(options.seq);
    if (!m) throw new AgentError('USAGE', `--seq ${JSON.stringify(options.seq)} is not a range FROM-TO (e.g. 10-20, 10-, -20, or 15)`);
    if (m[1]) selection.seqFrom = Number(m[1]);
    if (m[2]) selection.seqTo = Number(m[2]);
    else if (!options.seq.includes('-')) selection.seqTo = selection.seqFrom;
  }
  return selection;
}

/** stdout, or a new file readable by its owner only (it holds records). */
export async function openOutput(out: string | undefined): Promise<{ stream: Writable; name: string; close: () => Promise<void> }> {
  if (out === undefined || out === '-') {
    return { stream: process.stdout, name: 'stdout', close: async () => {} };
  }
  // wx: an existing file (an earlier export, perhaps the only copy of purged records) is never overwritten.
  // flush: synced to disk at close, before a purge may remove what it holds.
  const stream = createWriteStream(out, { mode: 0o600, flags: 'wx', flush: true });
  try {
    await once(stream, 'open');
  } catch (cause) {
    throw new AgentError('USAGE', `cannot create ${out}: ${(cause as Error).message}`, { cause });
  }
  return {
    stream,
    name: out,
    close: async () => {
      stream.end();
      await once(stream, 'finish');
    },
  };
}

/** Writes with backpressure: at most the stream's buffer waits in memory. */
export async function write(stream: Writable, bytes: Uint8Array): Promise<void> {
  if (!stream.write(bytes)) await once(stream, 'drain');
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en')} ${n === 1 ? one : many}`;
}
