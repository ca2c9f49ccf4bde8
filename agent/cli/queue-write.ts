/**
 * The queue commands that change the file: `purge` and `replay` (docs/operations.md, "Queue tools"). Both
 * first print what they would touch; without --yes they stop there (exit 2), with --dry-run they stop there
 * on purpose (exit 0). They may run beside the agent: their transactions are short and the agent reloads
 * its view when it sees another process wrote.
 */
import { readExport } from '../queue/export-format.ts';
import { openToolFile, type ToolFile } from '../queue/tool-file.ts';
import { Purger, type UnitId } from '../queue/tool-purge.ts';
import { Replayer } from '../queue/tool-replay.ts';
import { readUnits, type QueueUnit } from '../queue/tool-units.ts';
import { AgentError } from '../errors.ts';
import { Progress } from './progress.ts';
import { parseSelection, plural, resolveTarget, type SelectionOptions, type TargetOptions } from './queue-target.ts';

export interface Confirm {
  yes?: boolean;
  dryRun?: boolean;
}

/** Per stream: units, records, bytes and the sequences of recorded batches. */
class Plan {
  private readonly streams = new Map<string, { units: number; records: number; bytes: number; seqs: number[] }>();
  units = 0;
  records = 0;

  add(unit: Pick<QueueUnit, 'stream' | 'seq' | 'count' | 'storedBytes'>): void {
    let s = this.streams.get(unit.stream);
    if (!s) this.streams.set(unit.stream, (s = { units: 0, records: 0, bytes: 0, seqs: [] }));
    s.units++;
    s.records += unit.count;
    s.bytes += unit.storedBytes;
    if (unit.seq !== null && s.seqs.length < 1000) s.seqs.push(unit.seq);
    this.units++;
    this.records += unit.count;
  }

  describe(verb: string, path: string): string {
    const lines = [`${verb} ${plural(this.records, 'record')} in ${plural(this.units, 'unit')} of ${path}:`];
    for (const [name, s] of this.streams) {
      const seqs = s.seqs.length > 0 ? `; recorded batches #${Math.min(...s.seqs)}–#${Math.max(...s.seqs)} (${s.seqs.length})` : '';
      lines.push(`  ${name}: ${plural(s.records, 'record')} in ${plural(s.units, 'unit')}${s.bytes > 0 ? `, ${plural(s.bytes, 'byte')} stored` : ''}${seqs}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

function confirmOrStop(plan: Plan, options: Confirm, what: string): boolean {
  if (options.dryRun) {
    process.stderr.write(`dry run: nothing ${what}\n`);
    return false;
  }
  if (!options.yes) throw new AgentError('USAGE', `nothing ${what}: add --yes to go ahead, or --dry-run to only list what would be`);
  return plan.units > 0;
}

export interface PurgeOptions extends TargetOptions, SelectionOptions, Confirm {
  fromExport?: string;
}

export async function purgeCommand(options: PurgeOptions): Promise<number> {
  const target = resolveTarget(options);
  const fromExport = options.fromExport;
  if (fromExport && (options.stream || options.since || options.until || options.seq)) {
    throw new AgentError('USAGE', '--from-export removes exactly what the export holds: give it without --stream, --since, --until or --seq');
  }
  const selection = parseSelection(options);
  const file = openToolFile(target.path, { write: !options.dryRun });
  try {
    const units = async function* (): AsyncGenerator<UnitId & { count: number; storedBytes: number }> {
      if (!fromExport) {
        yield* readUnits(file, selection, { decode: false });
        return;
      }
      const reader = await readExport(fromExport);
      if (reader.header.epoch !== file.epoch) {
        throw new AgentError(
          'USAGE',
          `${fromExport} was exported from a queue of epoch ${reader.header.epoch || '(none)'}, not this one (${file.epoch}): nothing of it is here`,
        );
      }
      yield* reader.units;
    };
    const plan = new Plan();
    for await (const unit of units()) plan.add(unit);
    process.stderr.write(plan.describe(options.dryRun ? 'would remove' : 'will remove', target.path));
    if (!confirmOrStop(plan, options, 'removed')) return 0;
    const purger = new Purger(file);
    const progress = new Progress('purge', plan.records);
    for await (const unit of units()) {
      purger.add(unit);
      progress.add(unit.count);
    }
    const tally = purger.finish();
    progress.finish();
    const kept = tally.kept > 0 ? `; ${plural(tally.kept, 'unit')} left alone (numbered or acknowledged since they were listed)` : '';
    process.stderr.write(
      `removed ${plural(tally.records, 'record')} in ${plural(tally.units, 'unit')} (${plural(tally.bytes, 'byte')})${kept}; longest write transaction ${tally.longestWriteMs.toFixed(1)} ms\n`,
    );
    return 0;
  } finally {
    file.close();
  }
}

export interface ReplayOptions extends TargetOptions, Confirm {
  renumber?: boolean;
}

export async function replayCommand(exportFile: string, options: ReplayOptions): Promise<number> {
  const target = resolveTarget(options);
  const file = openToolFile(target.path, { write: !options.dryRun });
  try {
    const first = await readExport(exportFile);
    const header = first.header;
    // The first pass decides unit by unit without writing: the plan is exactly what the second pass does.
    const dry = new Replayer(file, { epoch: header.epoch, codec: target.codec, renumber: options.renumber === true, dryRun: true });
    const plan = new Plan();
    for await (const unit of first.units) {
      const before = dry.tally.units;
      dry.add(unit);
      dry.finish();
      if (dry.tally.units > before) plan.add({ ...unit, storedBytes: 0 });
    }
    describeReplay(plan, dry.tally.skipped, dry.tally.skippedRecords, dry.tally.renumbered, header.epoch, file, target.path, options.dryRun === true);
    if (!confirmOrStop(plan, options, 'replayed')) return 0;
    const replayer = new Replayer(file, { epoch: header.epoch, codec: target.codec, renumber: options.renumber === true, dryRun: false });
    const progress = new Progress('replay', plan.records);
    for await (const unit of (await readExport(exportFile)).units) {
      replayer.add(unit);
      progress.add(unit.records.length);
    }
    const tally = replayer.finish();
    progress.finish();
    process.stderr.write(
      `replayed ${plural(tally.records, 'record')} in ${plural(tally.units, 'unit')} into ${target.path}${tally.skipped > 0 ? `; skipped ${plural(tally.skipped, 'unit')} not purged from it` : ''}; longest write transaction ${tally.longestWriteMs.toFixed(1)} ms\n`,
    );
    return 0;
  } finally {
    file.close();
  }
}

function describeReplay(
  plan: Plan,
  skipped: number,
  skippedRecords: number,
  renumbered: number,
  epoch: string,
  file: ToolFile,
  path: string,
  dryRun: boolean,
): void {
  let text = plan.describe(dryRun ? 'would put back' : 'will put back', path);
  if (epoch === file.epoch) text += '  recorded batches keep their sequence: the centre drops any it already has\n';
  else text += `  the export is of epoch ${epoch || '(unknown)'}, this queue's is ${file.epoch}: records go in as new records\n`;
  if (renumbered > 0)
    text += `  ${plural(renumbered, 'recorded batch', 'recorded batches')} get new sequences (--renumber): the centre may hold their records twice\n`;
  if (skipped > 0)
    text += `  skipped: ${plural(skippedRecords, 'record')} in ${plural(skipped, 'unit')} not purged from this queue (still in it, or delivered)\n`;
  process.stderr.write(text);
}
