import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { builtExecutable } from '../helpers/executable.ts';
import { DEFAULT_HEAP_CAPS } from '../../agent/cli/heap-caps.ts';

// The shipped executable with its shipped heap caps (no EDGE_AGENT_MAX_OLD_SPACE_MB) under loads that ran
// it out of memory before records in flight were bounded in bytes: many sources catching up at once, and
// records from 50 B to 10 MiB. Each run must deliver every row exactly as many times as there are rows (the
// receiver's output file is counted), and the process must not die.
const _ROOT = resolve(import.meta.dirname, '../..');

const ensureExecutable = (): string => builtExecutable('linux-x64');

let dir: string;
let nativeCache: string;
let bin: string;

/** A SQLite file with `tables` tables of `rows` rows each, every row carrying a blob of `bytes` bytes. */
function makeDatabase(path: string, tables: number, rows: number, bytes: number): void {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  const blob = Buffer.alloc(bytes, 0x61);
  for (let t = 0; t < tables; t++) {
    db.exec(`CREATE TABLE t${t} (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)`);
    const insert = db.prepare(`INSERT INTO t${t} (id, payload) VALUES (?, ?)`);
    db.transaction(() => {
      for (let i = 1; i <= rows; i++) insert.run(i, blob);
    })();
  }
  db.close();
}

function config(name: string, db: string, tables: number, extra: { maxRowBytes?: string; envelope?: string }): string {
  const sources = Array.from(
    { length: tables },
    (_, t) =>
      `  - { type: sqlite, name: s${t}, path: ${db}, table: t${t}, id_column: id, interval: 200ms${extra.maxRowBytes ? `, max_row_bytes: ${extra.maxRowBytes}` : ''} }`,
  ).join('\n');
  return `device:
  id: mem-gw
data_dir: data-${name}
keys:
  device_private: keys/device.key
  centre_public: keys/centre.pub
  generate_if_missing: true
sources:
${sources}
sink:
  type: mqtt
  url: embedded
  protocol_version: 4
broker:
  embedded: true${extra.envelope ? `\n  max_packet_bytes: ${extra.envelope}` : ''}${extra.envelope ? `\nbatch:\n  max_bytes: ${extra.envelope}` : ''}
receiver:
  enabled: true
  private_key: keys/centre.key${extra.envelope ? `\n  max_envelope_bytes: ${extra.envelope}\n  max_batch_bytes: ${extra.envelope}` : ''}
  devices:
    - id: mem-gw
      public_keys: [keys/device.pub]
  output: out-${name}.jsonl
`;
}

/** Distinct (stream, id) pairs in the receiver's output, and all lines (a duplicate would show as more lines). */
async function countOutput(path: string): Promise<{ lines: number; distinct: number }> {
  if (!existsSync(path)) return { lines: 0, distinct: 0 };
  const seen = new Set<string>();
  let lines = 0;
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of rl) {
    if (line === '') continue;
    // The payload can be megabytes: only the head of the line is parsed (stream and id come first).
    const m = /"stream":"([^"]+)".*?"record":\{"id":(\d+)/.exec(line.slice(0, 400));
    assert.ok(m, `unexpected output line: ${line.slice(0, 200)}`);
    seen.add(`${m[1]}:${m[2]}`);
    lines++;
  }
  return { lines, distinct: seen.size };
}

/** Runs the executable until the receiver wrote `expected` distinct rows (or it died, or the deadline passed). */
async function runUntilDelivered(
  name: string,
  tables: number,
  rows: number,
  bytes: number,
  extra: { maxRowBytes?: string; envelope?: string } = {},
): Promise<void> {
  const db = join(dir, `${name}.db`);
  makeDatabase(db, tables, rows, bytes);
  writeFileSync(join(dir, `${name}.yaml`), config(name, db, tables, extra));
  const output = join(dir, `out-${name}.jsonl`);
  const child = spawn(bin, ['run', '--config', `${name}.yaml`], {
    cwd: dir,
    env: { ...process.env, PKG_NATIVE_CACHE_PATH: nativeCache, EDGE_AGENT_HEAP_REPORT: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  let exitCode: number | null | undefined;
  let exitSignal: NodeJS.Signals | null = null;
  const exited = new Promise<void>((done) =>
    child.on('exit', (code, signal) => {
      exitCode = code;
      exitSignal = signal;
      done();
    }),
  );
  const expected = tables * rows;
  try {
    const deadline = Date.now() + 240_000;
    let counted = { lines: 0, distinct: 0 };
    let lastSize = -1;
    while (Date.now() < deadline && exitCode === undefined) {
      const size = existsSync(output) ? statSync(output).size : 0;
      if (size !== lastSize) {
        lastSize = size;
        counted = await countOutput(output);
        if (counted.distinct >= expected) break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(exitCode, undefined, `the executable died (code ${exitCode}, signal ${exitSignal}); stderr:\n${stderr}`);
    assert.equal(counted.distinct, expected, `rows delivered; stderr:\n${stderr}`);
    // At least once: a redelivered batch may repeat lines, but never beyond what was sent once more.
    assert.ok(counted.lines >= expected, `lines ${counted.lines}`);
    assert.match(stderr, /heap_size_limit=\d+/, 'the shipped heap caps are in force');
    const limit = Number(/heap_size_limit=(\d+)/.exec(stderr)![1]);
    // heap_size_limit is the old space plus the young generation (a few MB).
    assert.ok(limit <= (DEFAULT_HEAP_CAPS.oldSpaceMb + 8) * 1024 * 1024, `heap_size_limit ${limit}: the test must run under the shipped caps`);
    process.stdout.write(`# ${name}: ${expected} rows of ${bytes} B from ${tables} source(s) delivered (${counted.lines} lines)\n`);
    child.kill('SIGTERM');
    await exited;
  } finally {
    child.kill('SIGKILL');
  }
}

describe('the executable under memory pressure (shipped heap caps)', {
  skip: process.arch === 'x64' && process.platform === 'linux' ? false : 'the host is not linux-x64',
}, () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'edge-agent-memory-'));
    nativeCache = join(dir, 'native-cache');
    mkdirSync(nativeCache);
    bin = ensureExecutable();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('32 SQLite sources catching up at once (2,000 rows of 500 B each) deliver every row', async () => {
    await runUntilDelivered('many', 32, 2_000, 500);
  });

  for (const [bytes, rows] of [
    [50, 20_000],
    [500, 20_000],
    [5 * 1024, 5_000],
    [64 * 1024, 600],
  ] as const) {
    it(`one SQLite source of ${rows} records of ${bytes} B delivers every row`, async () => {
      await runUntilDelivered(`rec${bytes}`, 1, rows, bytes, { maxRowBytes: '1MiB' });
    });
  }

  it('a table of 10 MiB BLOBs delivers every row', async () => {
    await runUntilDelivered('blobs', 1, 6, 10 * 1024 * 1024, { maxRowBytes: '16MiB', envelope: '24MiB' });
  });
});
