import type { Command } from 'commander';
import { AgentError } from '../errors.ts';
import { parseSize } from '../util/units.ts';
import type { DefineCommand } from './command.ts';
import { findEndpoint, request } from './endpoint.ts';

export const tap: DefineCommand = (parent: Command, exit) => {
  parent
    .command('tap')
    .summary('print live records of a stream as they are committed (secrets redacted)')
    .description(
      'Print the records of STREAM as the running agent commits them, one JSON line each, from its HTTP endpoint (http.enabled). Fields named like secrets (password, token, key…), every secret the configuration names and URL passwords are redacted. Bounded: the tap ends after --max-bytes (at most http.tap_max_bytes), and records that arrive while this reader is slow are skipped and counted. Needs the local token (read from <data_dir>/http-token). Ctrl-C ends it.',
    )
    .usage('STREAM [--config FILE] [--url URL] [--count N] [--max-bytes SIZE]')
    .argument('<STREAM>', 'the stream to watch (a source writes to its name unless it sets stream:)')
    .option('-c, --config <FILE>', "the agent's config file (finds data_dir); without it, the embedded demo defaults")
    .option('--url <URL>', 'the endpoint (default: the address the agent wrote to <data_dir>/http.url)')
    .option('-n, --count <N>', 'stop after N records')
    .option('--max-bytes <SIZE>', 'stop after this many bytes of records, e.g. 64KiB (default and upper bound: http.tap_max_bytes)')
    .action(async (stream: string, options: TapOptions) => exit(await tapCommand(stream, options)));
};

export interface TapOptions {
  config?: string;
  url?: string;
  count?: string;
  maxBytes?: string;
}

export async function tapCommand(stream: string, options: TapOptions): Promise<number> {
  const count = options.count === undefined ? Number.POSITIVE_INFINITY : Number(options.count);
  if (!(count >= 1) || !Number.isInteger(count === Number.POSITIVE_INFINITY ? 1 : count))
    throw new AgentError('USAGE', `--count takes a whole number of records, got ${options.count}`);
  const maxBytes = options.maxBytes === undefined ? undefined : parseSize(options.maxBytes);
  if (options.maxBytes !== undefined && (maxBytes === undefined || maxBytes < 1))
    throw new AgentError('USAGE', `--max-bytes takes a size such as 64KiB, got ${options.maxBytes}`);
  const endpoint = findEndpoint(options);
  const query = new URLSearchParams({ stream, ...(maxBytes === undefined ? {} : { max_bytes: String(maxBytes) }) });
  const abort = new AbortController();
  const response = await request(endpoint, `/api/tap?${query}`, { headers: { authorization: `Bearer ${endpoint.token()}` }, signal: abort.signal });
  if (!response.body) return 0;
  const decoder = new TextDecoder();
  let buffered = '';
  let records = 0;
  let first = true;
  try {
    for await (const chunk of response.body) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        if (first) {
          first = false;
          process.stderr.write(`edge-agent: tapping ${stream} at ${endpoint.url} (Ctrl-C ends)\n`);
          continue;
        }
        const end = /^\{"end":/.test(line) ? (JSON.parse(line) as { end: string; bytes: number; skipped: number }) : undefined;
        if (end) {
          process.stderr.write(`edge-agent: tap ended (${end.end}) after ${end.bytes} bytes; ${end.skipped} records skipped while this reader was slow\n`);
          return 0;
        }
        process.stdout.write(`${line}\n`);
        if (++records >= count) return 0;
      }
    }
  } finally {
    abort.abort();
  }
  return 0;
}
