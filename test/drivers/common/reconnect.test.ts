/** The shared reconnect policy of drivers/common/reconnect.ts: one pending attempt, backoff that resets, cancel for good. */
import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../../../agent/util/backoff.ts';
import { backoffPolicy, fixedDelay, reconnectOptions, Reconnector } from '../../../drivers/common/reconnect.ts';

describe('Reconnector', () => {
  it('waits backoffDelay(policy, n) for the n-th attempt, keeps one pending, and starts over after a success', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const r = new Reconnector({ initialMs: 100, maxMs: 1000 }, () => 1);
      let runs = 0;
      assert.equal(
        r.schedule(() => runs++),
        100,
      );
      assert.equal(
        r.schedule(() => runs++),
        undefined,
        'one attempt pending at a time',
      );
      mock.timers.tick(100);
      assert.equal(runs, 1);
      assert.deepEqual(
        [1, 2, 3, 4].map(() => {
          const wait = r.schedule(() => runs++);
          mock.timers.tick(wait!);
          return wait;
        }),
        [200, 400, 800, 1000],
      );
      r.succeeded();
      assert.equal(r.attempt, 0);
      assert.equal(
        r.schedule(() => runs++),
        100,
      );
      r.cancel();
      mock.timers.tick(1000);
      assert.equal(runs, 5, 'a cancelled attempt never runs');
      assert.equal(
        r.schedule(() => runs++),
        undefined,
        'nothing is scheduled after cancel',
      );
    } finally {
      mock.timers.reset();
    }
  });

  it('full jitter stays within [0, ceiling]; a fixed delay has neither growth nor jitter', () => {
    const jittered = new Reconnector({ initialMs: 100, maxMs: 1000 }, () => 0.5);
    assert.equal(
      jittered.schedule(() => {}),
      50,
    );
    jittered.cancel();
    const fixed = new Reconnector(fixedDelay(1000));
    assert.equal(
      fixed.schedule(() => {}),
      1000,
    );
    fixed.cancel();
  });

  it('reconnectOptions declares initial_delay 500ms and max_delay 1m unless given', () => {
    assert.deepEqual(backoffPolicy(reconnectOptions().parse(undefined)), { initialMs: 500, maxMs: 60_000, floorMs: 0 });
    assert.deepEqual(backoffPolicy(reconnectOptions().parse({ initial_delay: '1s' })), { initialMs: 1000, maxMs: 60_000, floorMs: 0 });
  });

  it('min_delay is a floor under the jitter (a metered link)', () => {
    const policy = backoffPolicy(reconnectOptions().parse({ initial_delay: '1s', max_delay: '1m', min_delay: '30s' }));
    assert.equal(
      backoffDelay(policy, 0, () => 0),
      30_000,
      'never below the floor',
    );
    assert.equal(
      backoffDelay(policy, 0, () => 1),
      30_000,
      'a ceiling below the floor is raised to it',
    );
    assert.equal(
      backoffDelay(policy, 10, () => 0.5),
      45_000,
      'jitter spreads between the floor and the ceiling',
    );
  });

  it('the reconnector keeps the floor (it dropped it: a flapping metered link reconnected every 1.5 s on average under a 3 s floor)', () => {
    const policy = backoffPolicy(reconnectOptions().parse({ initial_delay: '3s', max_delay: '3s', min_delay: '3s' }));
    const reconnector = new Reconnector(policy, () => 0);
    assert.equal(
      reconnector.schedule(() => {}),
      3_000,
    );
    reconnector.cancel();
  });
});
