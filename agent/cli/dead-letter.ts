import type { Command } from 'commander';
import { loadConfigFile } from '../app.ts';
import { x25519 } from '../keys/x25519.ts';
import { AgentError } from '../errors.ts';
import { createLogger, type LogFormat } from '../log.ts';
import type { DeadLetterEntry } from '../receiver/dead-letter.ts';
import { type DefineCommand, logFormatOption } from './command.ts';

/** `edge-agent dead-letter list|show|replay`: the receiver's set-aside batches (docs/operations.md). */
export const deadLetter: DefineCommand = (parent: Command, exit) => {
  const group = parent
    .command('dead-letter')
    .summary("inspect and replay the receiver's dead-letter store")
    .description(
      'Batches the receiver authenticated but could not output (over a limit, unserialisable, or an output error that outlasted receiver.output_retry_for) are set aside in receiver.dead_letter.path. List them, show one, or replay them to the output once the cause is fixed (raise a limit, free the disk).',
    )
    .usage('COMMAND --config FILE');
  group
    .command('list')
    .summary('list the set-aside batches')
    .usage('--config FILE [--json]')
    .requiredOption('-c, --config <FILE>', 'config file (YAML) with a receiver section')
    .option('--json', 'one JSON object per line instead of a table')
    .action(async (options: { config: string; json?: boolean }) => exit(await listCommand(options)));
  group
    .command('show')
    .summary('show one set-aside batch and why it was set aside')
    .usage('ID --config FILE')
    .argument('<ID>', 'the id `list` shows')
    .requiredOption('-c, --config <FILE>', 'config file (YAML) with a receiver section')
    .action(async (id: string, options: { config: string }) => exit(await showCommand(id, options)));
  group
    .command('replay')
    .summary('write set-aside batches to the output again')
    .usage('(ID... | --all) --config FILE')
    .argument('[ID...]', 'ids `list` shows')
    .option('--all', 'every set-aside batch')
    .requiredOption('-c, --config <FILE>', 'config file (YAML) with a receiver section')
    .addOption(logFormatOption())
    .action(async (ids: string[], options: ReplayOptions) => exit(await replayCommand(ids, options)));
};

interface ReplayOptions {
  config: string;
  all?: boolean;
  logFormat?: LogFormat;
}

function parseId(text: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id < 1) throw new AgentError('USAGE', `${JSON.stringify(text)} is not a dead-letter id (a whole number from list)`);
  return id;
}

function describe(e: DeadLetterEntry): Record<string, unknown> {
  return { ...e, at: new Date(e.at).toISOString() };
}

/** The receiver's modules, loaded by these commands only, not at every start of the executable. */
const replay = () => import('../receiver/replay.ts');

export async function listCommand(options: { config: string; json?: boolean }): Promise<number> {
  const store = (await replay()).openDeadLetters(loadConfigFile(options.config));
  try {
    const entries = store.list();
    if (options.json) {
      for (const e of entries) process.stdout.write(`${JSON.stringify(describe(e))}\n`);
      return 0;
    }
    for (const e of entries) {
      process.stdout.write(
        `${e.id}\t${new Date(e.at).toISOString()}\t${e.device}/${e.stream}#${e.seq}\t${e.records} records\t${e.bytes} bytes\t${e.reason}${e.attempts > 0 ? `\t(${e.attempts} replays failed)` : ''}\n`,
      );
    }
    process.stderr.write(`${entries.length} set-aside batch${entries.length === 1 ? '' : 'es'}, ${store.bytes()} bytes in ${store.path}\n`);
    return 0;
  } finally {
    store.close();
  }
}

export async function showCommand(idText: string, options: { config: string }): Promise<number> {
  const id = parseId(idText);
  const store = (await replay()).openDeadLetters(loadConfigFile(options.config));
  try {
    const entry = store.get(id);
    if (!entry) throw new AgentError('USAGE', `no dead letter ${id} in ${store.path} (see edge-agent dead-letter list)`);
    process.stdout.write(`${JSON.stringify(describe(entry), null, 2)}\n`);
    return 0;
  } finally {
    store.close();
  }
}

/** Exit 0 when every chosen batch was written, 1 when some were refused again or missing. */
export async function replayCommand(idTexts: string[], options: ReplayOptions): Promise<number> {
  if (options.all === idTexts.length > 0) throw new AgentError('USAGE', 'give either dead-letter ids or --all; see edge-agent dead-letter replay --help');
  const ids = options.all ? 'all' : idTexts.map(parseId);
  const loaded = loadConfigFile(options.config);
  const log = createLogger(loaded.config.log.level, { format: options.logFormat ?? loaded.config.log.format });
  const outcomes = await (await replay()).replayDeadLetters(x25519, loaded, ids, log);
  for (const o of outcomes) process.stderr.write(`dead letter ${o.id}: ${o.outcome}${o.reason ? ` (${o.reason})` : ''}\n`);
  const written = outcomes.filter((o) => o.outcome === 'written').length;
  process.stderr.write(`${written} of ${outcomes.length} replayed\n`);
  return written === outcomes.length ? 0 : 1;
}
