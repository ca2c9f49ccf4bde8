import { z, duration, size } from '../../../agent/sdk/index.ts';
import { databasePasswordOptions } from '../secrets.ts';

/**
 * The options every SQL source shares: what to read and how the cursor walks it. Each driver spreads these
 * into its own strictObject next to its connection options, so the schema stays declared once.
 */
export const sqlCursorOptions = () => ({
  table: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/, 'a table name, optionally schema-qualified (schema.table)')
    .optional()
    .describe('Table to poll (optionally schema.table). Give either `table` or `query`.'),
  query: z
    .string()
    .min(1)
    .optional()
    .describe(
      'A SELECT (no ORDER BY, no LIMIT) to poll instead of a table. The source wraps it as a derived table and adds the cursor condition, the order and the limit itself; it must return the cursor column(s).',
    ),
  id_column: z
    .string()
    .min(1)
    .default('id')
    .describe('Integer column that increases with every new row (unique); the cursor, or its tie-break in timestamp mode.'),
  timestamp_column: z
    .string()
    .min(1)
    .optional()
    .describe(
      'When set, the cursor is (timestamp_column, id_column): for tables whose ids are not in insertion order but whose rows carry a non-decreasing time.',
    ),
  batch_size: z.number().int().min(1).max(100_000).default(1000).describe('Rows per query (and per emit).'),
  max_rows_per_poll: z.number().int().min(1).default(100_000).describe('Upper bound of rows one poll reads; the rest waits for the next poll.'),
  max_batch_bytes: size()
    .prefault('4MiB')
    .refine((n) => n >= 1, 'at least 1 byte')
    .describe(
      'Upper bound of the bytes of the rows one read fetches (and one emit carries), as the database counts their column values; a batch ends before the row that would pass it (a batch always holds at least one row). Up to 4 batches await their commit at once.',
    ),
  max_row_bytes: size()
    .prefault('1MiB')
    .refine((n) => n >= 1, 'at least 1 byte')
    .describe(
      'A row whose column values add up to more is never fetched: it is skipped, counted as `row_too_large` and logged (at a bounded rate) with its table and id, and the cursor moves past it so the source goes on.',
    ),
  json_columns: z
    .array(z.string().min(1))
    .default([])
    .describe('Text columns holding JSON documents, delivered parsed (a value that does not parse is delivered as text and counted).'),
  start: z
    .enum(['beginning', 'end'])
    .default('beginning')
    .describe('Where a source with no committed cursor begins: with the oldest row, or after the rows present at its first poll.'),
  query_timeout: duration(1).prefault('30s').describe('Longest a query may run on the server before it is cancelled (a clear, retried error).'),
});

/** The shared options as parsed. */
export interface SqlCursorConfig {
  table?: string | undefined;
  query?: string | undefined;
  id_column: string;
  timestamp_column?: string | undefined;
  batch_size: number;
  max_rows_per_poll: number;
  max_batch_bytes: number;
  max_row_bytes: number;
  json_columns: string[];
  start: 'beginning' | 'end';
  query_timeout: number;
}

/** Connection credentials that never sit in the config text (drivers/common/secrets.ts). */
export const sqlCredentialOptions = databasePasswordOptions;

/**
 * Object-level rule of every SQL source's options: exactly one of `table` and `query`. Declared in the
 * schema (not only when the source starts) so check-config reports it with its line.
 */
export function exactlyOneInput(
  o: { table?: string | undefined; query?: string | undefined },
  ctx: { addIssue(issue: { code: 'custom'; path: string[]; message: string }): void },
): void {
  if ((o.table === undefined) === (o.query === undefined)) {
    ctx.addIssue({ code: 'custom', path: [o.table === undefined ? 'table' : 'query'], message: 'give exactly one of table or query' });
  }
}
