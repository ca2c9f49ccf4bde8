import { z, duration, size } from '../../../agent/sdk/index.ts';

/** Built on first use (agent/sdk/define.ts). */
export function options() {
  const format = z
    .discriminatedUnion('type', [
      z.strictObject({
        type: z.literal('json_lines').describe("Each line is a JSON object whose keys become the record's fields; anything else is counted as `bad_json`."),
      }),
      z.strictObject({
        type: z.literal('csv').describe('Each line is one CSV row (parsed with csv-parse; a quoted field may not span lines).'),
        delimiter: z.string().length(1).default(',').describe('Field separator (one character).'),
        header: z
          .boolean()
          .default(true)
          .describe("The file's first line names the columns (read again from the file after a restart); without it, `columns` names them."),
        columns: z.array(z.string().min(1)).min(1).optional().describe('Column names, when the file has no header line (or to override it).'),
        numbers: z.boolean().default(true).describe('Turn fields that are decimal numbers into numbers.'),
      }),
      z.strictObject({
        type: z.literal('lines').describe('Each line becomes `{ line }` (UTF-8, a trailing "\\r" stripped).'),
      }),
    ])
    .prefault({ type: 'lines' })
    .describe('How each line is turned into a record: `type` is json_lines, csv or lines.');

  return z.strictObject({
    paths: z
      .array(z.string().min(1))
      .min(1)
      .describe('Files to tail: paths or glob patterns (`*`, `**`, `?`, `[…]`), relative to the config file. Matched again at every poll.'),
    exclude: z.array(z.string().min(1)).default([]).describe('Glob patterns of files never to read, e.g. `*.gz` for compressed rotated files.'),
    format,
    start_at: z
      .enum(['beginning', 'end'])
      .default('end')
      .describe(
        'Where to start in files found at the very first start (no committed cursor yet): `end` reads only lines written from now on, `beginning` reads what the files hold. Files that appear later are always read from their beginning.',
      ),
    poll_interval: duration(10)
      .prefault('250ms')
      .describe('How often the paths are matched and the files checked for growth, rotation and truncation. fs.watch events wake the source earlier.'),
    rotate_wait: duration(0)
      .prefault('5s')
      .describe('How long a file renamed away (rotated) is still read for lines its writer adds before reopening the new file.'),
    max_line_bytes: size()
      .prefault('64KiB')
      .refine((n) => n >= 16 && n <= 16 * 1024 * 1024, 'between 16 bytes and 16MiB')
      .describe('Longest line accepted; a longer line is skipped up to its newline and counted as `line_too_long`.'),
    read_bytes: size()
      .prefault('64KiB')
      .refine((n) => n >= 1024 && n <= 8 * 1024 * 1024, 'between 1KiB and 8MiB')
      .describe('Bytes read from a file at once.'),
    max_files: z.number().int().min(1).max(10_000).default(100).describe('Files followed at once; more matches are counted as `too_many_files` and ignored.'),
    batch_records: z.number().int().min(1).max(10_000).default(500).describe('Records per emit at most.'),
    max_pending: z.number().int().min(1).max(1000).default(8).describe('Emits awaiting their commit at once; beyond that reading waits.'),
    max_pending_bytes: size()
      .prefault('1MiB')
      .refine((n) => n >= 1, 'at least 1 byte')
      .describe(
        'Bytes of lines read and not yet committed (each line plus 128); beyond that reading waits. A group is handed over once it holds max_pending_bytes / max_pending.',
      ),
    path_field: z.string().default('path').describe('Field that receives the path of the file a line came from; empty for none.'),
    offset_field: z.string().default('').describe('Field that receives the byte offset of the line in its file; empty (default) for none.'),
  });
}

export type FileOptions = z.output<ReturnType<typeof options>>;
export type FileFormat = FileOptions['format'];
