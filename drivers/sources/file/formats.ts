import { parse } from 'csv-parse/sync';
import type { AgentRecord } from '../../../agent/sdk/index.ts';
import type { FileFormat } from './options.ts';

/** What one line gives: a record's fields, nothing (a CSV header, a blank line), or a reason to count it as bad. */
export type LineResult = { ok: true; fields: AgentRecord } | { ok: true; fields: undefined } | { ok: false; reason: string; detail: string };

/** Turns lines of one file into records. Stateful for CSV with a header line (its columns). */
export interface LineDecoder {
  /** `offset` is where the line starts in its file: line 0 of a CSV file with a header names the columns. */
  decode(line: string, offset: number): LineResult;
  /** Whether the file's first line must be read before lines further on can be decoded (CSV header, resumed mid-file). */
  readonly needsHeader: boolean;
  /** Gives the file's first line, when the file is resumed past it. */
  header(line: string): void;
}

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?$/;
const NOTHING: LineResult = { ok: true, fields: undefined };

function jsonLines(): LineDecoder {
  return {
    needsHeader: false,
    header() {},
    decode(line) {
      if (line.trim() === '') return NOTHING;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        return { ok: false, reason: 'bad_json', detail: (err as Error).message };
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return { ok: false, reason: 'bad_json', detail: 'a JSON value that is not an object' };
      }
      return { ok: true, fields: value as AgentRecord };
    },
  };
}

function plainLines(): LineDecoder {
  return {
    needsHeader: false,
    header() {},
    decode(line) {
      return line === '' ? NOTHING : { ok: true, fields: { line } };
    },
  };
}

function csv(format: Extract<FileFormat, { type: 'csv' }>): LineDecoder {
  let columns: string[] | undefined = format.columns;
  const fromHeader = format.header;
  const row = (line: string): string[] => {
    const rows = parse(line, { delimiter: format.delimiter, relax_column_count: true }) as string[][];
    if (rows.length !== 1) throw new Error(rows.length === 0 ? 'no row' : 'a quoted field spans lines');
    return rows[0]!;
  };
  return {
    get needsHeader() {
      return fromHeader && format.columns === undefined && columns === undefined;
    },
    header(line) {
      try {
        columns = row(line);
      } catch {
        columns = undefined;
      }
    },
    decode(line, offset) {
      if (line.trim() === '') return NOTHING;
      let values: string[];
      try {
        values = row(line);
      } catch (err) {
        return { ok: false, reason: 'bad_csv', detail: (err as Error).message };
      }
      if (fromHeader && offset === 0) {
        // The header line: it names the columns unless the config does.
        if (format.columns === undefined) columns = values;
        return NOTHING;
      }
      if (columns === undefined) return { ok: false, reason: 'bad_csv', detail: 'no header line read yet to name the columns' };
      const fields: AgentRecord = {};
      for (let i = 0; i < values.length; i++) {
        const name = columns[i] ?? `column_${i + 1}`;
        const value = values[i]!;
        fields[name] = format.numbers && NUMBER.test(value) ? Number(value) : value;
      }
      return { ok: true, fields };
    },
  };
}

export function createLineDecoder(format: FileFormat): LineDecoder {
  switch (format.type) {
    case 'json_lines':
      return jsonLines();
    case 'csv':
      return csv(format);
    case 'lines':
      return plainLines();
  }
}
