/**
 * The file source on real files, driven in-process with a context whose emit commits at once and records
 * what it was given (records and cursor), so each case can restart the source from the last cursor.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, copyFileSync, mkdtempSync, openSync, renameSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSource } from '../../drivers/sources/file/index.ts';
import { silentLogger } from '../../agent/log.ts';
import type { AgentRecord, Cursor, ServiceSource, SourceContext } from '../../agent/sdk/index.ts';

class Harness {
  readonly records: AgentRecord[] = [];
  readonly problems: string[] = [];
  cursor: Cursor | undefined;
  private waiters: { test: () => boolean; resolve: () => void }[] = [];
  private source: ServiceSource | undefined;
  private abort = new AbortController();

  async start(options: Record<string, unknown>, dir: string): Promise<void> {
    const config = fileSource.options.parse({ poll_interval: '20ms', ...options });
    this.abort = new AbortController();
    this.source = (await fileSource.create(
      { ...config, type: 'file', name: 'f', stream: 'f', interval: 1000, on_start_error: 'fail' },
      {
        log: silentLogger,
        baseDir: dir,
        counters: { add() {} },
        problems: { report: (kind) => this.problems.push(kind) },
      },
    )) as ServiceSource;
    const ctx: SourceContext = {
      name: 'f',
      log: silentLogger,
      cursor: this.cursor,
      signal: this.abort.signal,
      counters: { add() {} },
      problems: { report: (kind: string) => void this.problems.push(kind) },
      emit: async (records, cursor) => {
        this.records.push(...records);
        if (cursor !== undefined) this.cursor = cursor;
        this.waiters = this.waiters.filter((w) => (w.test() ? (w.resolve(), false) : true));
      },
      fail: (err) => assert.fail(String(err)),
    };
    await this.source.start(ctx);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.source?.stop();
  }

  waitFor(test: () => boolean, what: string): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${JSON.stringify(this.records.slice(-3))}`)), 10_000);
      this.waiters.push({ test, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}

function scratch(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'edge-file-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('file source', () => {
  it('start_at end skips what is there; a partial last line waits for its newline', async () => {
    const { dir, done } = scratch();
    const h = new Harness();
    try {
      writeFileSync(join(dir, 'a.log'), 'old 1\nold 2\nold 3 partial');
      await h.start({ paths: ['*.log'], start_at: 'end' }, dir);
      appendFileSync(join(dir, 'a.log'), ' ends here\nnew 4\nnew ');
      await h.waitFor(() => h.records.length >= 2, 'two lines');
      appendFileSync(join(dir, 'a.log'), '5\n');
      await h.waitFor(() => h.records.length >= 3, 'the third line');
      assert.deepEqual(
        h.records.map((r) => r.line),
        ['old 3 partial ends here', 'new 4', 'new 5'],
      );
      assert.equal(h.records[0]!.path, join(dir, 'a.log'));
    } finally {
      await h.stop();
      done();
    }
  });

  it('a line over max_line_bytes is skipped and counted; the lines around it are kept', async () => {
    const { dir, done } = scratch();
    const h = new Harness();
    try {
      writeFileSync(join(dir, 'a.log'), `{"n":1}\n{"big":"${'x'.repeat(3000)}"}\n{"n":2}\nnot json\n{"n":3}\n`);
      await h.start({ paths: ['a.log'], start_at: 'beginning', format: { type: 'json_lines' }, max_line_bytes: 1024, read_bytes: '1KiB' }, dir);
      await h.waitFor(() => h.records.length >= 3, 'three records');
      assert.deepEqual(
        h.records.map((r) => r.n),
        [1, 2, 3],
      );
      assert.deepEqual(h.problems.sort(), ['bad_json', 'line_too_long']);
    } finally {
      await h.stop();
      done();
    }
  });

  it('CSV resumed mid-file names its columns from the header line; a rename while stopped is followed', async () => {
    const { dir, done } = scratch();
    const h = new Harness();
    const path = join(dir, 'export.csv');
    try {
      writeFileSync(path, 'time;sensor;value\n1;s-1;20.5\n2;s-2;"21,5"\n');
      const options = { paths: ['export.csv'], start_at: 'beginning', format: { type: 'csv', delimiter: ';' } };
      await h.start(options, dir);
      await h.waitFor(() => h.records.length >= 2, 'two rows');
      await h.stop();
      // While the agent is down: a row more, then a rotation by rename and a new file with its own header.
      appendFileSync(path, '3;s-3;22\n');
      renameSync(path, `${path}.1`);
      writeFileSync(path, 'time;sensor;value\n4;s-4;23\n');
      await h.start(options, dir);
      await h.waitFor(() => h.records.length >= 4, 'four rows');
      assert.deepEqual(
        h.records.map((r) => [r.time, r.sensor, r.value]),
        [
          [1, 's-1', 20.5],
          [2, 's-2', '21,5'],
          [3, 's-3', 22],
          [4, 's-4', 23],
        ],
      );
    } finally {
      await h.stop();
      done();
    }
  });

  it('copytruncate while stopped: the unread rest is read from the copy, then the truncated file from its start', async () => {
    const { dir, done } = scratch();
    const h = new Harness();
    const path = join(dir, 'app.log');
    const lines = (from: number, to: number, tag: string) => Array.from({ length: to - from + 1 }, (_, i) => `${tag} ${from + i} ${'-'.repeat(60)}\n`).join('');
    try {
      writeFileSync(path, lines(1, 10, 'old'));
      const options = { paths: ['app.log'], start_at: 'beginning' };
      await h.start(options, dir);
      await h.waitFor(() => h.records.length >= 10, 'ten lines');
      await h.stop();
      appendFileSync(path, lines(11, 15, 'old')); // written, never read before the rotation
      copyFileSync(path, `${path}.1`);
      truncateSync(path, 0);
      appendFileSync(path, lines(1, 3, 'new'));
      await h.start(options, dir);
      await h.waitFor(() => h.records.length >= 18, 'eighteen lines');
      assert.deepEqual(
        h.records.map((r) => (r.line as string).split(' ').slice(0, 2).join(' ')),
        [...Array.from({ length: 15 }, (_, i) => `old ${i + 1}`), 'new 1', 'new 2', 'new 3'],
      );
    } finally {
      await h.stop();
      done();
    }
  });

  it('rename while running: lines the writer still adds to the renamed file within rotate_wait are read', async () => {
    const { dir, done } = scratch();
    const h = new Harness();
    const path = join(dir, 'app.log');
    const fd = openSync(path, 'a');
    try {
      await h.start({ paths: ['app.log'], start_at: 'beginning', rotate_wait: '10s' }, dir);
      writeSync(fd, 'a before the rename\n');
      await h.waitFor(() => h.records.length >= 1, 'the first line');
      renameSync(path, `${path}.1`);
      writeSync(fd, 'b into the renamed file\n');
      writeFileSync(path, 'c into the new file\n');
      await h.waitFor(() => h.records.length >= 3, 'three lines');
      assert.deepEqual(h.records.map((r) => (r.line as string)[0]).sort(), ['a', 'b', 'c']);
    } finally {
      closeSync(fd);
      await h.stop();
      done();
    }
  });
});
