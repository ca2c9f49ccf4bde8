import { type Command, Option } from 'commander';
import { EXPORT_FORMATS, type ExportFormat } from '../queue/export-format.ts';
import { AgentError } from '../errors.ts';
import type { DefineCommand } from './command.ts';
import { exportCommand, inspectCommand, salvageCommand, type ExportOptions } from './queue-read.ts';
import { addSelectionOptions, addTargetOptions } from './queue-target.ts';
import { purgeCommand, replayCommand, type PurgeOptions, type ReplayOptions } from './queue-write.ts';

const formatOption = () =>
  new Option('--format <FORMAT>', 'ndjson (one line per record, for reading) or cbor (lossless)').choices(EXPORT_FORMATS).default('ndjson');

/** `edge-agent queue inspect|export|purge|replay|salvage`: look into and repair the durable queue (docs/operations.md). */
export const queue: DefineCommand = (parent: Command, exit) => {
  const group = parent
    .command('queue')
    .summary('inspect, export, purge, replay or salvage the queue file')
    .description(
      "Work on the agent's queue file beside the running agent (reads never block it; writes are short transactions it waits a few milliseconds for), on a stopped queue, or on a quarantined *.corrupt-* file. A unit is a recorded batch (its sequence names it at the centre) or a chunk of records not yet in a batch. export → purge → replay puts records back with their identity, so the centre drops any it already has.",
    )
    .usage('COMMAND (--config FILE | --file PATH) [options]');
  addTargetOptions(
    group
      .command('inspect')
      .summary('what the queue holds, per stream')
      .usage('(--config FILE | --file PATH) [--json]')
      .option('--json', 'one JSON object instead of text'),
  ).action(async (options: { config?: string; file?: string; json?: boolean }) => exit(inspectCommand(options)));
  addSelectionOptions(
    addTargetOptions(
      group
        .command('export')
        .summary('write queued records to a file or stdout, with their identity')
        .usage('(--config FILE | --file PATH) [--stream NAME] [--since TIME] [--until TIME] [--seq FROM-TO] [--format ndjson|cbor] [--out FILE]')
        .addOption(formatOption())
        .option('-o, --out <FILE>', 'write here (created 0600, never overwritten) instead of stdout'),
    ),
  ).action(async (options: ExportOptions) => exit(await exportCommand(options)));
  addSelectionOptions(
    addTargetOptions(
      group
        .command('purge')
        .summary('remove records from the queue (prints what first; needs --yes)')
        .usage('(--config FILE | --file PATH) (--from-export FILE | [--stream NAME] [--since TIME] [--until TIME] [--seq FROM-TO]) (--yes | --dry-run)')
        .option('--from-export <FILE>', 'remove exactly the units this export holds (the safe way before a replay)')
        .option('-y, --yes', 'remove them')
        .option('-n, --dry-run', 'only print what would be removed'),
    ),
  ).action(async (options: PurgeOptions) => exit(await purgeCommand(options)));
  addTargetOptions(
    group
      .command('replay')
      .summary('put exported records back into the queue, keeping their identity (needs --yes)')
      .usage('EXPORT (--config FILE | --file PATH) (--yes | --dry-run) [--renumber]')
      .argument('<EXPORT>', 'a file written by queue export or queue salvage (NDJSON or CBOR)')
      .option('--renumber', "let recorded batches from another queue's epoch in as new records (the centre may then hold them twice)")
      .option('-y, --yes', 'put them back')
      .option('-n, --dry-run', 'only print what would be put back'),
  ).action(async (file: string, options: ReplayOptions) => exit(await replayCommand(file, options)));
  group
    .command('salvage')
    .summary('read every intact record from a damaged or quarantined queue file')
    .usage('FILE [--out FILE] [--format ndjson|cbor] [--json]')
    .argument('<FILE>', 'the damaged file (never written to)')
    .addOption(formatOption())
    .option('-o, --out <FILE>', 'write the records here (created 0600) instead of stdout')
    .option('--json', 'print the report as one JSON object on stdout (needs --out)')
    .action(async (file: string, options: { format: ExportFormat; out?: string; json?: boolean }) => {
      if (options.json && (options.out === undefined || options.out === '-'))
        throw new AgentError('USAGE', '--json prints the report on stdout: give the records a file with --out');
      exit(await salvageCommand(file, options));
    });
};
