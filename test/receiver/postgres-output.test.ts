/**
 * The PostgreSQL output against the machine's PostgreSQL (a fresh database per test, dropped after):
 * migrations idempotent under concurrent starts, a batch taken once however many receivers race for it, the
 * dedup window, epochs forgotten beyond the limit with the floor, pruning, and a batch at fault refused as
 * unwritable with nothing written.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../agent/log.ts';
import type { EnvelopeHeader } from '../../agent/envelope/header.ts';
import { receiverPostgresSchema } from '../../agent/config/centre-schema.ts';
import { postgresOutput } from '../../agent/receiver/outputs/postgres.ts';
import { prune } from '../../agent/receiver/outputs/postgres-schema.ts';
import { createPostgresDatabase, PG, pgClient, postgresUnavailable, type TestDatabase } from '../helpers/db.ts';

const unavailable = await postgresUnavailable();
if (unavailable) console.log(`# skipped: ${unavailable}`);

let db: TestDatabase;
before(async () => {
  if (!unavailable) db = await createPostgresDatabase();
});
after(async () => {
  await db?.drop();
});

function config(extra: Record<string, unknown> = {}) {
  return receiverPostgresSchema.parse({ url: `postgres://${PG.user}@${PG.host}:${PG.port}/${db.name}`, ...extra });
}
const limits = { window: 100, epochs: 2, streamsPerDevice: 2, retentionMs: 30 * 86_400_000, baseDir: '.', log: silentLogger };

function header(seq: number, epoch = 1, stream = 's', created = 1_000 + seq): EnvelopeHeader {
  return {
    device: 'gw-1',
    stream,
    epoch: new Uint8Array(8).fill(epoch),
    seq,
    count: 2,
    created,
    compression: 'none',
    deviceKeyId: new Uint8Array(8),
    centreKeyId: new Uint8Array(8),
    nonce: new Uint8Array(24),
  } as EnvelopeHeader;
}
const records = (seq: number) => [{ ts: 1_700_000_000_000 + seq, v: 1.5, big: 2n ** 64n }, { v: Buffer.from([1, 2]) }];

test('concurrent starts migrate once; racing receivers take a batch exactly once; records typed and as JSONB', { skip: unavailable }, async () => {
  const outputs = await Promise.all([1, 2, 3].map(() => postgresOutput(config({ table: 'race' }), limits)));
  try {
    const verdicts = await Promise.all(outputs.map((o) => o.write(header(1), records(1))));
    assert.deepEqual(verdicts.toSorted(), ['duplicate', 'duplicate', 'taken']);
    const client = await pgClient(db.name);
    try {
      const rows = (await client.query('SELECT device, stream, epoch, seq, idx, time, record FROM edge_agent.race ORDER BY idx')).rows;
      assert.equal(rows.length, 2);
      assert.equal(rows[0].epoch, '0101010101010101');
      assert.equal(rows[0].time.getTime(), 1_700_000_000_001);
      assert.deepEqual(rows[0].record, { ts: 1_700_000_000_001, v: 1.5, big: '18446744073709551616' });
      assert.equal(rows[1].time, null);
      assert.deepEqual(rows[1].record, { v: { $base64: 'AQI=' } });
      const versions = (await client.query('SELECT version FROM edge_agent.schema_versions WHERE target = $1', ['race'])).rows;
      assert.deepEqual(versions, [{ version: 1 }]);
    } finally {
      await client.end();
    }
  } finally {
    await Promise.all(outputs.map((o) => o.close()));
  }
});

test('window, epochs beyond the limit, floor, stream limit, pruning and a batch at fault', { skip: unavailable }, async () => {
  const out = await postgresOutput(config({ table: 'bounds' }), limits);
  const client = await pgClient(db.name);
  try {
    for (let seq = 1; seq <= 150; seq++) assert.equal(await out.write(header(seq), records(seq)), 'taken');
    assert.equal(await out.write(header(50), records(50)), 'stale', 'more than the window behind the newest');
    assert.equal(await out.write(header(51), records(51)), 'duplicate');
    // Marks below the window pruned: at most `window` left for the epoch.
    await prune(client, { schema: 'edge_agent', table: 'bounds' }, 100, 30 * 86_400_000);
    assert.equal(Number((await client.query('SELECT count(*) FROM edge_agent.bounds_batches')).rows[0].count), 100);
    // Epochs 2 and 3 arrive: epoch 1, the oldest, is forgotten and its newest creation time becomes the floor.
    assert.equal(await out.write(header(1, 2, 's', 5_000), records(1)), 'taken');
    assert.equal(await out.write(header(1, 3, 's', 6_000), records(1)), 'taken');
    assert.equal(Number((await client.query("SELECT count(*) FROM edge_agent.bounds_epochs WHERE epoch = '0101010101010101'")).rows[0].count), 0);
    assert.equal(await out.write(header(120, 1, 's', 1_120), records(120)), 'stale', 'a forgotten epoch at or below the floor');
    // A second stream is fine, a third is over max_streams_per_device.
    assert.equal(await out.write(header(1, 1, 't'), records(1)), 'taken');
    assert.equal(await out.write(header(1, 1, 'u'), records(1)), 'stream_limit');
    // Epochs idle beyond the retention are forgotten by the pruning, the floor raised.
    await client.query("UPDATE edge_agent.bounds_epochs SET last_seen = now() - interval '2 days' WHERE stream = 't'");
    await prune(client, { schema: 'edge_agent', table: 'bounds' }, 100, 86_400_000);
    assert.equal(Number((await client.query("SELECT count(*) FROM edge_agent.bounds_epochs WHERE stream = 't'")).rows[0].count), 0);
    assert.equal(await out.write(header(1, 1, 't'), records(1)), 'stale');
    // A NUL in a string: JSONB cannot hold it. The batch's own fault, and neither mark nor record stays.
    await assert.rejects(out.write(header(200), [{ text: 'a\u0000b' }]), { code: 'OUTPUT_UNWRITABLE' });
    assert.equal(Number((await client.query('SELECT count(*) FROM edge_agent.bounds_batches WHERE seq = 200')).rows[0].count), 0);
    assert.equal(await out.write(header(200), records(200)), 'taken');
  } finally {
    await client.end();
    await out.close();
  }
});
