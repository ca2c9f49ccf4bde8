import type { Command } from 'commander';
import { loadConfigFile } from '../app.ts';
import { clockSanity, diskSpace, queueIntegrity } from '../checks/gateway-health.ts';
import { configProblems } from '../checks/index.ts';
import { type CheckLine, type Endpoint, probeEndpoint } from '../checks/reachability.ts';
import type { LoadedConfig } from '../config/load.ts';
import { formatPath } from '../config/load.ts';
import { configPaths } from '../config/paths.ts';
import { describeError } from '../errors.ts';
import type { TlsOptions } from '../util/tls.ts';
import type { DefineCommand } from './command.ts';

/** `edge-agent check`: is this gateway fit to run, one line per thing looked at (docs/operations.md). */
export const check: DefineCommand = (parent: Command, exit) => {
  parent
    .command('check')
    .summary('check this gateway: config, key files, queue, brokers, clock, disk')
    .description(
      "Look at everything a gateway needs and print one line each, ok / warn / fail: the config (as check-config), the key files and their modes, the queue file's integrity (read-only quick_check; safe beside the running agent) and any quarantined files, DNS, TCP, TLS handshake and certificate expiry of the sink's broker and the control connection's, the clock, and free disk space. Exit 0 when nothing failed (warnings allowed), 1 otherwise.",
    )
    .usage('--config FILE [--json]')
    .requiredOption('-c, --config <FILE>', 'config file (YAML)')
    .option('--json', 'one JSON object: the lines and the verdict')
    .action(async (options: { config: string; json?: boolean }) => exit(await checkCommand(options)));
};

function configLines(loaded: LoadedConfig, problems: Awaited<ReturnType<typeof configProblems>>): CheckLine[] {
  const lines: CheckLine[] = [];
  for (const p of problems) {
    const key = p.path[0] === 'keys' || (p.path[0] === 'receiver' && /key/.test(String(p.path[1])));
    const pos = loaded.position(p.path);
    const where = `${loaded.origin}${pos?.line ? `:${pos.line}` : ''} ${formatPath(p.path)}`;
    lines.push({ check: key ? 'keys' : 'config', status: p.severity === 'error' ? 'fail' : 'warn', message: `${where}: ${p.message}` });
  }
  if (!lines.some((l) => l.check === 'keys')) lines.unshift({ check: 'keys', status: 'ok', message: 'key files present, readable, private keys owner-only' });
  if (!lines.some((l) => l.check === 'config')) lines.unshift({ check: 'config', status: 'ok', message: `${loaded.origin} valid` });
  return lines;
}

function endpoints(loaded: LoadedConfig): Endpoint[] {
  const out: Endpoint[] = [];
  const sink = loaded.config.sink as { type: string; url?: unknown; tls?: TlsOptions } | undefined;
  if (sink && typeof sink.url === 'string') out.push({ what: `sink (${sink.type})`, url: sink.url, tls: sink.tls });
  const broker = (loaded.config as { fleet?: { broker?: { url?: string; tls?: TlsOptions } } }).fleet?.broker;
  if (broker?.url && (loaded.config as { fleet?: { enabled?: boolean } }).fleet?.enabled) out.push({ what: 'fleet.broker', url: broker.url, tls: broker.tls });
  return out;
}

export async function checkCommand(options: { config: string; json?: boolean }, now = Date.now()): Promise<number> {
  const lines: CheckLine[] = [];
  let loaded: LoadedConfig | undefined;
  try {
    loaded = loadConfigFile(options.config);
  } catch (err) {
    lines.push({ check: 'config', status: 'fail', message: describeError(err).replace(/\n\s*/g, '; ') });
  }
  if (loaded) {
    lines.push(...configLines(loaded, await configProblems(loaded)));
    const paths = configPaths(loaded);
    if (loaded.config.device) lines.push(...queueIntegrity(paths.queue));
    for (const endpoint of endpoints(loaded)) lines.push(...(await probeEndpoint(endpoint, paths.baseDir, now)));
    lines.push(...clockSanity(paths.queue, now));
    lines.push(...diskSpace(paths.dataDir, loaded.config.queue.min_free_disk, loaded.config.queue.max_bytes));
  }
  const failed = lines.filter((l) => l.status === 'fail').length;
  const warned = lines.filter((l) => l.status === 'warn').length;
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ok: failed === 0, failed, warned, lines })}\n`);
  } else {
    const width = Math.max(...lines.map((l) => l.check.length));
    for (const l of lines) process.stdout.write(`${l.status.padEnd(4)}  ${l.check.padEnd(width)}  ${l.message}\n`);
    process.stdout.write(`${failed === 0 ? 'ok' : 'FAILED'}: ${lines.length} checks, ${failed} failed, ${warned} warnings\n`);
  }
  return failed === 0 ? 0 : 1;
}
