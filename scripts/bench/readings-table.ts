import { openSqlite } from '../../agent/sdk/index.ts';
import { recordMaker } from '../../drivers/sources/synthetic/shapes.ts';

/**
 * A SQLite table `readings` of `rows` realistic 120 B records (the synthetic source's shape: a timestamp per
 * row, noisy floats, 400 sensor ids, a status), as the SQL source benchmarks read it. `wal`: the journal mode
 * a live table of a site's has while it is written.
 */
export function makeReadingsTable(path: string, rows: number, o: { wal?: boolean } = {}): void {
  const make = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 120 });
  const db = openSqlite(path, {});
  if (o.wal) db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY, ts INTEGER, sensor TEXT, value REAL, unit TEXT, status TEXT)');
  const insert = db.prepare('INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (let n = 1; n <= rows; n++) {
      const r = make(n, 1767225600000 + n * 2, 0);
      insert.run(n, r.ts, r.sensor, r.value, r.unit, r.status);
    }
  })();
  db.close();
}
