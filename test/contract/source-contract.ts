import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from '../../agent/queue/queue.ts';
import { SourceRunner } from '../../agent/runtime/source-runner.ts';
import { silentLogger } from '../../agent/log.ts';
import { configSchemas } from '../../agent/app.ts';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import type { AgentRecord, SourceDriver } from '../../agent/sdk/index.ts';
import type { SourceConfig } from '../../agent/config/schema.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';
const { sourceSchema } = configSchemas();

export interface SourceContractOptions {
  /** Driver options (without the common fields) that make the source produce records here. */
  options: Record<string, unknown>;
  /** For sources with a cursor: what identifies a record, to prove a restart neither skips nor repeats. */
  identity?: (record: AgentRecord) => string | number;
}

function openQueue(dir: string): Queue {
  return Queue.open(
    testQueueOptions(join(dir, 'q.db'), {
      commitEveryRecords: 100,
      maxBytes: 1 << 26,
      maxAgeMs: 86_400_000,
      batchMaxRecords: 1000,
      codec: { compression: 'none', level: undefined },
    }),
  );
}

function allRecords(queue: Queue): AgentRecord[] {
  const out: AgentRecord[] = [];
  const busy = new Set<string>();
  for (let b = queue.nextBatch(busy); b; b = queue.nextBatch(busy)) {
    busy.add(b.key);
    out.push(...decodeRecords(decompress(b.body, b.compression, 1 << 26)));
  }
  return out;
}

async function runUntil(driver: SourceDriver, config: SourceConfig, queue: Queue, enough: () => boolean): Promise<SourceRunner> {
  const runner = new SourceRunner(
    driver,
    { ...config, stream: config.name },
    queue,
    { log: silentLogger, baseDir: process.cwd() },
    { initialMs: 10, maxMs: 100 },
    silentLogger,
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${driver.type}: no records within 20 s`)), 20_000);
    const stop = queue.onData(() => {
      if (enough()) {
        clearTimeout(timer);
        stop();
        resolve();
      }
    });
    runner.start().catch(reject);
  });
  return runner;
}

/** The behaviour every source driver owes the runtime. Call inside a describe() of the driver's test. */
export function sourceContract(driver: SourceDriver, contract: SourceContractOptions): void {
  const entry = { type: driver.type, name: `contract-${driver.type}`, interval: '50ms', ...contract.options };

  test(`contract(${driver.type}): declares itself and validates its options strictly`, () => {
    assert.match(driver.type, /^[a-z][a-z0-9_]*$/);
    assert.ok(driver.summary.length > 10);
    assert.ok(driver.mode === 'polled' || driver.mode === 'service');
    assert.equal(sourceSchema.safeParse(entry).success, true, 'the contract options validate');
    const unknown = sourceSchema.safeParse({ ...entry, no_such_option: 1 });
    assert.equal(unknown.success, false, 'unknown options are errors');
  });

  test(`contract(${driver.type}): emits plain-object records that the queue commits, and stops when asked`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-contract-'));
    const queue = openQueue(dir);
    try {
      const config = sourceSchema.parse(entry) as SourceConfig;
      const runner = await runUntil(driver, config, queue, () => queue.stats().records > 0);
      await runner.stop();
      assert.equal(runner.state, 'stopped');
      const records = allRecords(queue);
      assert.ok(records.length > 0);
      for (const r of records) {
        assert.equal(typeof r, 'object');
        assert.equal(typeof r.ts, 'number', 'every record carries a timestamp');
      }
    } finally {
      queue.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  if (contract.identity) {
    const identity = contract.identity;
    test(`contract(${driver.type}): resumes from the committed cursor with no gap and no repeat`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'edge-contract-'));
      try {
        const config = sourceSchema.parse(entry) as SourceConfig;
        let queue = openQueue(dir);
        let runner = await runUntil(driver, config, queue, () => queue.stats().records >= 50);
        await runner.stop();
        queue.close();
        queue = openQueue(dir);
        const before = queue.stats().records;
        runner = await runUntil(driver, config, queue, () => queue.stats().records >= before + 50);
        await runner.stop();
        const ids = allRecords(queue).map(identity);
        queue.close();
        assert.equal(new Set(ids).size, ids.length, 'no record twice');
        if (typeof ids[0] === 'number') {
          const sorted = [...(ids as number[])].sort((a, b) => a - b);
          assert.equal(sorted.at(-1)! - sorted[0]! + 1, sorted.length, 'no gap');
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}
