import type { Command } from 'commander';
import { bytesText, forwardingText } from '../observe/page.ts';
import type { StatusSnapshot } from '../observe/status-view.ts';
import type { DefineCommand } from './command.ts';
import { findEndpoint, request } from './endpoint.ts';

export const status: DefineCommand = (parent: Command, exit) => {
  parent
    .command('status')
    .summary('show the running agent: ready or not, sink, queue, sources, last errors')
    .description(
      "Show a summary of the running agent, read from its HTTP endpoint (http.enabled; docs/observability.md): readiness and why, the sink, forwarding, the queue by stream with its oldest record, what was delivered and dropped, the sources and the last errors. --json prints the endpoint's /api/status as it is. --token prints the local token the status page's actions and `tap` need (from <data_dir>/http-token; readable by the agent's user and root only). Exit 0 when the agent answered, 1 when not.",
    )
    .usage('[--config FILE] [--url URL] [--json | --token]')
    .option('-c, --config <FILE>', "the agent's config file (finds data_dir); without it, the embedded demo defaults")
    .option('--url <URL>', 'the endpoint, e.g. http://127.0.0.1:9464 (default: the address the agent wrote to <data_dir>/http.url)')
    .option('--json', 'print the status as JSON')
    .option('--token', 'print the local token and exit')
    .action(async (options: StatusOptions) => exit(await statusCommand(options)));
};

export interface StatusOptions {
  config?: string;
  url?: string;
  json?: boolean;
  token?: boolean;
}

export async function statusCommand(options: StatusOptions): Promise<number> {
  const endpoint = findEndpoint(options);
  if (options.token) {
    process.stdout.write(`${endpoint.token()}\n`);
    return 0;
  }
  const response = await request(endpoint, '/api/status', { headers: { accept: 'application/json' } });
  const snapshot = (await response.json()) as StatusSnapshot;
  process.stdout.write(options.json ? `${JSON.stringify(snapshot, null, 2)}\n` : statusText(snapshot, endpoint.url));
  return 0;
}

export function statusText(s: StatusSnapshot, url: string): string {
  const lines = [
    `edge-agent ${s.version} on ${s.device || '(no device id)'}: ${s.ready.ready ? 'READY' : 'NOT READY'} (up ${s.uptimeSeconds} s; previous run: ${s.lastExit}; ${url})`,
    `  sink ${s.sink.type}: ${s.ready.sink.detail}; ${s.sink.reconnects} reconnects`,
    `  backlog: ${s.ready.backlog.detail}`,
    `  forwarding: ${forwardingText(s)}`,
    `  queue: ${s.queue.records} records, ${bytesText(s.queue.bytes)}; in ${s.rates.inPerSecond.toFixed(1)}/s, out ${s.rates.outPerSecond.toFixed(1)}/s`,
    ...s.queue.streams.map((x) => `    ${x.name}: ${x.records} records, ${bytesText(x.bytes)}, oldest ${x.oldestAgeSeconds.toFixed(1)} s`),
    `  delivered: ${s.sent.records} records in ${s.sent.batches} batches (${bytesText(s.sent.bytes)}); ${s.sent.retries} retries, ${s.sent.rejected} set aside, ${s.sent.inFlight} in flight`,
  ];
  const drops = Object.entries(s.queue.dropped).flatMap(([stream, byReason]) => Object.entries(byReason).map(([reason, n]) => `${stream}: ${n} ${reason}`));
  lines.push(`  dropped: ${drops.length > 0 ? drops.join(', ') : 'none'}`);
  lines.push('  sources:', ...s.sources.map((x) => `    ${x.name} → ${x.stream}: ${x.state}, ${x.records} records`));
  if (s.lastErrors.length > 0) lines.push('  last errors (newest first):', ...s.lastErrors.slice(0, 5).map((e) => `    ${e.time} ${e.level} ${e.message}`));
  return `${lines.join('\n')}\n`;
}
