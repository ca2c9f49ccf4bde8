/**
 * The queue commands that only read: `inspect`, `export` and `salvage` (docs/operations.md, "Queue tools").
 * They open the file read-only, so they may run beside the agent at any time.
 */
import { type ExportFormat, type ExportHeader, encodeHeader, encodeUnit } from '../queue/export-format.ts';
import { openToolFile } from '../queue/tool-file.ts';
import { inspect } from '../queue/tool-inspect.ts';
import { openSalvage, type SalvageTally } from '../queue/tool-salvage.ts';
import { readUnits } from '../queue/tool-units.ts';
import { Progress } from './progress.ts';
import { openOutput, parseSelection, plural, resolveTarget, type SelectionOptions, type TargetOptions, write } from './queue-target.ts';

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

export function inspectCommand(options: TargetOptions & { json?: boolean }): number {
  const target = resolveTarget(options);
  const file = openToolFile(target.path, { write: false });
  try {
    const summary = inspect(file);
    if (options.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      return 0;
    }
    const out: string[] = [
      `${summary.path}: epoch ${summary.epoch || '(none)'}, ${plural(summary.records, 'record')}, ${plural(summary.bytes, 'byte')} stored (file ${summary.fileBytes}, WAL ${summary.walBytes})`,
    ];
    for (const s of summary.streams) {
      const batches =
        s.batches > 0 ? `, ${plural(s.batches, 'recorded batch', 'recorded batches')} #${s.firstSeq}–#${s.lastSeq} (${s.batchedRecords} records)` : '';
      out.push(
        `  ${s.stream}: ${plural(s.records, 'record')} in ${plural(s.chunks, 'chunk')}, ${plural(s.bytes, 'byte')}${batches}; next seq ${s.nextSeq}; oldest ${iso(s.oldest)}, newest ${iso(s.newest)}`,
      );
    }
    for (const d of summary.drops) out.push(`  dropped: ${d.stream} ${d.reason} ${d.records}`);
    if (summary.purgeLog > 0)
      out.push(`  purged and not replayed: ${plural(summary.purgeLog, 'unit')} (edge-agent queue replay puts them back from their export)`);
    for (const q of summary.quarantined) out.push(`  quarantined beside it: ${q.path} (${q.bytes} bytes; read it with edge-agent queue salvage)`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    file.close();
  }
}

export interface ExportOptions extends TargetOptions, SelectionOptions {
  format: ExportFormat;
  out?: string;
}

export async function exportCommand(options: ExportOptions): Promise<number> {
  const target = resolveTarget(options);
  const selection = parseSelection(options);
  const file = openToolFile(target.path, { write: false });
  try {
    let total = 0;
    for (const unit of readUnits(file, selection, { decode: false })) total += unit.count;
    const output = await openOutput(options.out);
    const header: ExportHeader = {
      format: 'edge-agent-queue-export',
      version: 1,
      epoch: file.epoch,
      device: target.device,
      source: target.path,
      exported_at: new Date().toISOString(),
      kind: 'export',
    };
    await write(output.stream, encodeHeader(header, options.format));
    const progress = new Progress('export', total);
    let units = 0;
    let records = 0;
    let numbered = 0;
    for (const unit of readUnits(file, selection)) {
      await write(output.stream, encodeUnit(unit, options.format));
      units++;
      records += unit.records.length;
      if (unit.seq !== null) numbered++;
      progress.add(unit.records.length);
    }
    progress.finish();
    await output.close();
    process.stderr.write(
      `exported ${plural(records, 'record')} in ${plural(units, 'unit')} (${numbered} recorded batches keep their sequence) from ${target.path} to ${output.name} (${options.format})\n`,
    );
    return 0;
  } finally {
    file.close();
  }
}

export interface SalvageOptions {
  format: ExportFormat;
  out?: string;
  json?: boolean;
}

/** Exit 0 when everything the file names was read, 1 when something was lost (the report says what). */
export async function salvageCommand(path: string, options: SalvageOptions): Promise<number> {
  const reader = openSalvage(path);
  try {
    const output = await openOutput(options.out);
    const header: ExportHeader = {
      format: 'edge-agent-queue-export',
      version: 1,
      epoch: '',
      device: null,
      source: path,
      exported_at: new Date().toISOString(),
      kind: 'salvage',
    };
    // The epoch is read with the first unit; the header waits for it so a replay can judge sequences.
    let wroteHeader = false;
    const progress = new Progress('salvage', 0, 'records');
    for (const unit of reader.units) {
      if (!wroteHeader) {
        await write(output.stream, encodeHeader({ ...header, epoch: reader.tally.epoch }, options.format));
        wroteHeader = true;
      }
      await write(output.stream, encodeUnit(unit, options.format));
      progress.add(unit.records.length);
    }
    if (!wroteHeader) await write(output.stream, encodeHeader({ ...header, epoch: reader.tally.epoch }, options.format));
    progress.finish();
    await output.close();
    const t = reader.tally;
    if (options.json) process.stdout.write(`${JSON.stringify({ file: path, out: output.name, ...t })}\n`);
    process.stderr.write(salvageReport(path, output.name, t));
    return t.damagedChunks + t.unreadableChunks > 0 ? 1 : 0;
  } finally {
    reader.close();
  }
}

function salvageReport(path: string, out: string, t: SalvageTally): string {
  const lines = [`salvaged ${plural(t.records, 'record')} in ${plural(t.chunks, 'chunk')} from ${path} to ${out} (epoch ${t.epoch || 'unknown'})`];
  if (t.damagedChunks > 0) lines.push(`lost: ${plural(t.damagedRecords, 'record')} in ${plural(t.damagedChunks, 'damaged chunk')} (rows read, payloads not)`);
  if (t.unreadableChunks > 0) lines.push(`lost: ${plural(t.unreadableChunks, 'unreadable row')} (how many records they held is unknown)`);
  if (t.brokenBatches > 0)
    lines.push(`${plural(t.brokenBatches, 'recorded batch', 'recorded batches')} lost a chunk: their surviving records come out without a sequence`);
  if (t.damagedChunks + t.unreadableChunks === 0) lines.push('nothing lost: every row the file names was read');
  for (const note of t.notes) lines.push(`note: ${note}`);
  return `${lines.join('\n')}\n`;
}
