/**
 * A source's emitted records must not stay reachable from the source while it waits (for room, for an earlier
 * emit's commit): the queue writes them as bytes at once, and records an async frame keeps alive across its
 * awaits outlive the young generation, are promoted and cost a full collection each (docs/benchmarks.md,
 * "CPU per record, fourth pass"). Each test stops the source at its next `room()` after one emit, collects
 * garbage, and checks that the emitted records were freed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { silentLogger } from '../../agent/log.ts';
import type { AgentRecord, SourceContext } from '../../agent/sdk/index.ts';
import { problemReporter } from '../../agent/hosting/driver-env.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { SqlPolledSource, type SqlDialect } from '../../drivers/common/sql/poller.ts';
import { sqlCursorOptions } from '../../drivers/common/sql/options.ts';
import type { Position } from '../../drivers/common/sql/position.ts';
import { syntheticSource } from '../../drivers/sources/synthetic/index.ts';
import { z } from '../../agent/sdk/index.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * A context whose emits commit at once and keep nothing, whose first `room()` is free and whose second one
 * waits until `release`: by then exactly one emit was made, and the source is suspended in its loop.
 */
function gatedContext() {
  const emitted: WeakRef<AgentRecord[]>[] = [];
  let rooms = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let waiting!: () => void;
  const waits = new Promise<void>((resolve) => (waiting = resolve));
  const abort = new AbortController();
  const ctx: SourceContext = {
    name: 'src',
    log: silentLogger,
    cursor: undefined,
    signal: abort.signal,
    counters: { add: () => {} },
    problems: problemReporter(() => ctx.counters, silentLogger),
    emit: (records) => {
      emitted.push(new WeakRef(records));
      return Promise.resolve();
    },
    room: () => {
      if (++rooms === 1) return Promise.resolve();
      waiting();
      return gate;
    },
    fail: (err) => {
      throw err;
    },
  };
  return { ctx, emitted, waits, release, abort };
}

/** Collects garbage after the current job (a WeakRef's target is kept until its job ends). */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  return ref.deref() === undefined;
}

describe('emitted records are not kept by the source while it waits', () => {
  it('the SQL poller (rows read whole, and rows read after their sizes)', async () => {
    for (const whole of [true, false]) {
      const rows = 3000;
      const after = (p: Position | undefined) => (p === undefined ? 0 : Number(p.id));
      const range = (from: Position | undefined, upTo: Position, limit: number) => {
        const out: Record<string, unknown>[] = [];
        for (let id = after(from) + 1; id <= Number(upTo.id) && out.length < limit; id++) out.push({ id, text: `row ${id}` });
        return out;
      };
      const dialect: SqlDialect<null> = {
        where: 'memory',
        connected: true,
        connect: async () => {},
        observe: async () => ({ max: { id: rows }, fence: null, at: Date.now() }),
        settled: () => true,
        read: async (from, upTo, limit) => range(from, upTo, limit),
        sizes: async (from, upTo, limit) => range(from, upTo, limit).map((r) => ({ position: { id: r.id as number }, bytes: 10 })),
        ...(whole
          ? { readIfFits: async (from: Position | undefined, upTo: Position, limit: number) => ({ rows: range(from, upTo, limit), bytes: 10 * limit }) }
          : {}),
        disconnect: async () => {},
        classify: (err) => ({ error: err as never, counter: 'errors', reconnect: false }),
        countNullCursor: async () => 0,
      };
      const config = z.strictObject(sqlCursorOptions()).parse({ table: 't', batch_size: 1000 });
      const source = new SqlPolledSource(config, dialect, 'table t');
      const { ctx, emitted, waits, release } = gatedContext();
      const polled = source.gather(ctx);
      await waits;
      assert.equal(emitted.length, 1, 'one emit before the second room()');
      assert.ok(await collected(emitted[0]!), `${whole ? 'whole' : 'sized'}: the emitted rows are still reachable while the poller waits`);
      release();
      await polled;
      assert.equal(emitted.length, 3, 'every row emitted once the room came');
    }
  });

  it('the synthetic source', async () => {
    const config = syntheticSource.options.parse({ rate: 0, count: 5000, batch: 500, shape: 'realistic' });
    const source = await syntheticSource.create(
      { ...config, type: 'synthetic', name: 'src', stream: 'src', on_start_error: 'retry' } as never,
      driverEnv({ log: silentLogger, baseDir: process.cwd() }),
    );
    const { ctx, emitted, waits, release } = gatedContext();
    if (!('start' in source)) throw new Error('the synthetic source is a service');
    await source.start(ctx);
    await waits;
    assert.equal(emitted.length, 1, 'one emit before the second room()');
    assert.ok(await collected(emitted[0]!), 'the emitted records are still reachable while the source waits');
    release();
    await source.stop();
  });
});
