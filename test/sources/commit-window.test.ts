import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseConfig } from '../../agent/app.ts';
import { startAgent } from '../../agent/runtime/agent.ts';
import { silentLogger } from '../../agent/log.ts';
import { openSqlite } from '../../agent/sdk/index.ts';
import { until } from '../helpers/processes.ts';
import { workspace } from '../helpers/setup.ts';

// A fast source keeps a window of emits in flight and waits for the oldest to commit (the SQL poller: 4 emits). Commits are grouped by
// queue.commit_every_records or queue.commit_interval; when the emits in flight hold fewer records than the
// first (small batch_size), the one the source waits on must still commit at once, or catching up runs at one
// window per commit interval (batch_size 100: 400 rows per 500 ms). Here the interval is ten minutes: the rows
// arrive only if the source's own waits commit them.
function readingsTable(dir: string, rows: number): string {
  const table = join(dir, 'readings.db');
  const db = openSqlite(table, {});
  db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY, sensor TEXT, value REAL)');
  const insert = db.prepare('INSERT INTO readings VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let n = 1; n <= rows; n++) insert.run(n, `s-${n % 17}`, n / 7);
  })();
  db.close();
  return table;
}

/** An agent with `source` (one YAML flow mapping) whose queue commits only every ten minutes (or 100k records), its sink unreachable. */
const config = (source: string) => `
device: { id: gw-commit-window }
data_dir: data
keys: { device_private: keys/device.key, centre_public: keys/centre.pub }
queue: { commit_interval: 10m, commit_every_records: 100000 }
sources: [ ${source} ]
sink: { type: mqtt, url: 'mqtt://127.0.0.1:1', reconnect: { initial_delay: 1s, max_delay: 5s } }
`;

const sqliteSourceYaml = (table: string, batchSize: number) =>
  `{ type: sqlite, name: table, path: ${JSON.stringify(table)}, table: readings, batch_size: ${batchSize}, interval: 100ms }`;

/** Runs the agent until `total` records are committed (failing after a minute); returns the queue's commits. */
async function catchUp(dir: string, source: string, total: number): Promise<number> {
  const agent = await startAgent(parseConfig(config(source), 'commit-window.yaml', dir), silentLogger);
  try {
    await until(() => agent.status().queue.committed >= total, `all ${total} records committed (committed: ${agent.status().queue.committed})`, 60_000);
    const { queue } = agent.status();
    assert.equal(queue.committed, total, 'each record once');
    return queue.commits;
  } finally {
    await agent.stop();
  }
}

test('a SQL source with a small batch_size catches up without waiting for the commit interval', async () => {
  const ws = await workspace('edge-sql-commit-');
  try {
    const rows = 3000;
    const commits = await catchUp(ws.dir, sqliteSourceYaml(readingsTable(ws.dir, rows), 50), rows);
    // 50 rows per emit, 4 emits per window: a commit per window, not one per emit and not one in all.
    assert.ok(commits >= rows / 200 && commits <= rows / 50, `${commits} commits for ${rows} rows`);
  } finally {
    ws.cleanup();
  }
});

// The file source keeps a window of emits too (max_pending, max_pending_bytes), and so does the synthetic one.
test('a file source with small emits catches up without waiting for the commit interval', async () => {
  const ws = await workspace('edge-file-commit-');
  try {
    const lines = 3000;
    const file = join(ws.dir, 'readings.jsonl');
    writeFileSync(file, Array.from({ length: lines }, (_, i) => `{"n":${i + 1},"sensor":"s-${i % 17}"}\n`).join(''));
    const source = `{ type: file, name: lines, paths: [${JSON.stringify(file)}], format: { type: json_lines }, start_at: beginning, batch_records: 50, max_pending: 4 }`;
    await catchUp(ws.dir, source, lines);
  } finally {
    ws.cleanup();
  }
});

test('the synthetic source with a small window catches up without waiting for the commit interval', async () => {
  const ws = await workspace('edge-synthetic-commit-');
  try {
    await catchUp(ws.dir, '{ type: synthetic, name: gen, rate: 0, count: 3000, batch: 10, max_pending: 4 }', 3000);
  } finally {
    ws.cleanup();
  }
});

// The rows of one poll (fewer than a window) wait for the ten-minute commit; stopping the agent must commit
// them at once, not wait it out (SIGTERM under systemd would end in SIGKILL).
test('stopping a source commits what it emitted at once, whatever the commit interval', async () => {
  const ws = await workspace('edge-sql-stop-');
  const rows = 30;
  const agent = await startAgent(parseConfig(config(sqliteSourceYaml(readingsTable(ws.dir, rows), 1000)), 'sql-stop.yaml', ws.dir), silentLogger);
  try {
    await until(() => (agent.status().sources.table?.counters.records ?? 0) >= rows, 'the source emitted every row', 60_000);
    assert.equal(agent.status().queue.committed, 0, 'nothing committed before the stop: the interval holds them');
    const stopped = await Promise.race([agent.stop().then(() => true), delay(60_000, false)]);
    assert.ok(stopped, 'the stop ended within a minute, not after the commit interval');
    assert.equal(agent.status().queue.committed, rows, 'every emitted row committed by the stop');
  } finally {
    await agent.stop();
    ws.cleanup();
  }
});
