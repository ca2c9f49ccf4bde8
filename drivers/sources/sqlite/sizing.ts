import type Database from 'better-sqlite3';

/**
 * How the sizes statements measure one column of a SQLite source, chosen once per connection from what the
 * schema guarantees about its values. Every form gives a bound that never loads a TEXT or BLOB value (its
 * stored length is read from the record header); they differ in what a number costs, and a number is never
 * large, so any form is correct for any value: the schema only picks the cheapest.
 *
 * - `text`: a column of TEXT affinity holds only TEXT, BLOB or NULL (SQLite turns a number written there into
 *   text), so `octet_length` never formats a number.
 * - `number`: the column is the table's rowid (INTEGER PRIMARY KEY of a rowid table), or an INTEGER, INT or
 *   REAL column of a STRICT table: it holds only numbers (or NULL), counted as 8 bytes with no work per row.
 * - `any`: anything else (INTEGER, REAL or NUMERIC affinity in an ordinary table, no declared type, a query's
 *   expression). `octet_length` of a number formats it as text first: for the benchmark's table (an INTEGER
 *   and a REAL beside the rowid) ≈ 480 of the totals statement's ≈ 3,850 instructions per 120 B row, the
 *   rowid another ≈ 350. `typeof` reads only the type from the record header, so numbers are counted as
 *   8 bytes and only text and BLOBs are measured (docs/benchmarks.md, "Session 11: zstd by default; sizing
 *   SQLite rows by type"). Telling numbers apart by comparing with '' costs fewer instructions but makes
 *   SQLite load every text and BLOB value whole to compare it: tried twice, refused both times by
 *   test/sources/db-sqlite.test.ts (a 96 MiB row raised the peak RSS by 96 MiB).
 */
export type ColumnSizing = 'text' | 'number' | 'any';

/**
 * The SQL for one column's size in bytes; NULL for a NULL value, which the sizes statements count as 0
 * (statements.ts), except in a `number` column, where every value counts 8.
 */
export function columnSize(sizing: ColumnSizing, quoted: string): string {
  switch (sizing) {
    case 'text':
      return `octet_length(${quoted})`;
    case 'number':
      return '8';
    case 'any':
      return `CASE typeof(${quoted}) WHEN 'integer' THEN 8 WHEN 'real' THEN 8 ELSE octet_length(${quoted}) END`;
  }
}

/** SQLite's affinity rule 2: a declared type containing CHAR, CLOB or TEXT gives TEXT affinity. */
function hasTextAffinity(declared: string): boolean {
  const type = declared.toUpperCase();
  // Rule 1 comes first: a type containing INT has INTEGER affinity, whatever else it says ("POINT" included).
  return !type.includes('INT') && (type.includes('CHAR') || type.includes('CLOB') || type.includes('TEXT'));
}

/** What the table's schema guarantees: its rowid column (if it has one) and whether it is STRICT. */
interface TableFacts {
  rowidColumn: string | undefined;
  strict: boolean;
}

/**
 * Reads `table` ("name" or "schema.name") from the schema: undefined when it is not a plain table (a view, a
 * virtual table) or cannot be found, and then nothing is assumed.
 */
function tableFacts(db: Database.Database, table: string): TableFacts | undefined {
  const dot = table.indexOf('.');
  const schema = dot === -1 ? 'main' : table.slice(0, dot);
  const name = dot === -1 ? table : table.slice(dot + 1);
  const listed = db.prepare('SELECT type, wr, strict FROM pragma_table_list WHERE schema = ? AND name = ?').get(schema, name) as
    | { type: string; wr: number; strict: number }
    | undefined;
  if (listed?.type !== 'table') return undefined;
  const columns = db.prepare('SELECT name, type, pk FROM pragma_table_info(?, ?)').all(name, schema) as { name: string; type: string; pk: number }[];
  const keys = columns.filter((c) => c.pk > 0);
  // Only a rowid table's single-column key declared exactly INTEGER is the rowid itself ("INT" is not).
  const only = keys.length === 1 ? keys[0]! : undefined;
  const rowidColumn = listed.wr === 0 && only !== undefined && only.type.toUpperCase() === 'INTEGER' ? only.name : undefined;
  return { rowidColumn, strict: listed.strict === 1 };
}

/**
 * The sizing of each column `SELECT * FROM <source>` returns, by name. `table` is the configured table, or
 * undefined for a query (whose columns keep their declared type when they name a table's column directly).
 */
export function columnSizings(db: Database.Database, statement: Database.Statement, table: string | undefined): Map<string, ColumnSizing> {
  const facts = table === undefined ? undefined : tableFacts(db, table);
  const sizings = new Map<string, ColumnSizing>();
  for (const column of statement.columns()) {
    const declared = column.type ?? '';
    let sizing: ColumnSizing = declared !== '' && hasTextAffinity(declared) ? 'text' : 'any';
    if (facts !== undefined && column.name === facts.rowidColumn) sizing = 'number';
    else if (facts?.strict && ['INTEGER', 'INT', 'REAL'].includes(declared.toUpperCase())) sizing = 'number';
    sizings.set(column.name, sizing);
  }
  return sizings;
}
