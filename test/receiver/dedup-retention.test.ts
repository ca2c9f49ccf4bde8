/**
 * The SQLite dedup state's bound by time (receiver.dedup_retention): an epoch with no batch taken for the
 * retention is forgotten (rows deleted, floor raised), so a replaced gateway's old epochs do not stay for
 * ever; what it had accepted is still refused as stale, and the stream counts no more against the limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DedupState } from '../../agent/receiver/dedup.ts';

const DAY = 86_400_000;

test('epochs idle beyond the retention are forgotten, at open and on demand; their batches stay stale', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-dedup-'));
  const path = join(dir, 'receiver.db');
  try {
    let state = new DedupState(path, 1000, { retentionMs: DAY, streamsPerDevice: 1 });
    for (let seq = 1; seq <= 5; seq++) state.mark('gw', 'old', 'aa', seq, 1, 1_000 + seq);
    assert.deepEqual(state.size(), { epochs: 1, rows: 5 });
    assert.equal(state.check('gw', 'other', 'bb', 1, 2_000), 'stream_limit');
    assert.equal(state.pruneIdle(Date.now()), 0, 'nothing idle yet');
    assert.equal(state.pruneIdle(Date.now() + DAY + 1), 1);
    assert.deepEqual(state.size(), { epochs: 0, rows: 0 });
    assert.equal(state.check('gw', 'old', 'aa', 3, 1_003), 'stale', 'accepted before: below the floor');
    assert.equal(state.check('gw', 'other', 'bb', 1, 2_000), 'new', 'the idle stream no longer counts against the limit');
    state.close();
    // Reopened, the floor holds.
    state = new DedupState(path, 1000, { retentionMs: DAY, streamsPerDevice: 1 });
    assert.equal(state.check('gw', 'old', 'aa', 5, 1_005), 'stale');
    state.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
