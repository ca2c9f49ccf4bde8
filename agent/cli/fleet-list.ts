import type { Command } from 'commander';
import { allStatuses } from '../remote/topics.ts';
import type { Exit } from './command.ts';
import { brokerOptions, connectOperator, type OperatorBrokerOptions, parseJson, retained } from './fleet-mqtt.ts';

/** `edge-agent fleet list`: every device with a retained status under the prefix. */
export function defineFleetList(group: Command, exit: Exit): void {
  brokerOptions(
    group
      .command('list')
      .summary('list the devices from their retained status')
      .description('Reads every retained `<prefix>/<device>/status`: online or not, version, config version, backlog.')
      .usage('--broker URL [--prefix P] [--json]'),
  )
    .option('--json', 'one JSON status per line instead of a table')
    .action(async (options: OperatorBrokerOptions & { json?: boolean }) => exit(await fleetListCommand(options)));
}

export interface DeviceRow {
  device: string;
  online: boolean;
  session: number | undefined;
  version: string;
  config: string;
  records: number | undefined;
  oldest_age_s: number | undefined;
  last_error: string | undefined;
}

export async function listDevices(options: OperatorBrokerOptions): Promise<{ rows: DeviceRow[]; statuses: Record<string, unknown>[] }> {
  const client = await connectOperator(options);
  try {
    const found = await retained(client, allStatuses(options.prefix));
    const statuses: Record<string, unknown>[] = [];
    const rows: DeviceRow[] = [];
    for (const [topic, payload] of found) {
      const s = parseJson(payload);
      const device = topic.split('/').at(-2)!;
      if (!s) {
        rows.push({
          device,
          online: false,
          session: undefined,
          version: '?',
          config: '?',
          records: undefined,
          oldest_age_s: undefined,
          last_error: 'unreadable status',
        });
        continue;
      }
      statuses.push(s);
      const queue = s.queue as { records?: number; oldest_age_s?: number } | undefined;
      const config = s.config as { version?: string } | undefined;
      rows.push({
        device,
        online: s.online === true,
        session: typeof s.session === 'number' ? s.session : undefined,
        version: typeof s.version === 'string' ? s.version : '-',
        config: config?.version ?? '-',
        records: queue?.records,
        oldest_age_s: queue?.oldest_age_s,
        last_error: typeof s.last_error === 'string' ? s.last_error : undefined,
      });
    }
    rows.sort((a, b) => a.device.localeCompare(b.device));
    return { rows, statuses };
  } finally {
    await client.endAsync();
  }
}

export async function fleetListCommand(options: OperatorBrokerOptions & { json?: boolean }): Promise<number> {
  const { rows, statuses } = await listDevices(options);
  if (options.json) {
    for (const s of statuses) process.stdout.write(`${JSON.stringify(s)}\n`);
    return 0;
  }
  const table = [
    ['DEVICE', 'ONLINE', 'SESSION', 'VERSION', 'CONFIG', 'BACKLOG', 'OLDEST', 'LAST ERROR'],
    ...rows.map((r) => [
      r.device,
      r.online ? 'yes' : 'no',
      String(r.session ?? '-'),
      r.version,
      r.config,
      r.records === undefined ? '-' : String(r.records),
      r.oldest_age_s === undefined ? '-' : `${r.oldest_age_s}s`,
      r.last_error ?? '',
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table)
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
  const online = rows.filter((r) => r.online).length;
  process.stdout.write(`${rows.length} device(s), ${online} online\n`);
  return 0;
}
