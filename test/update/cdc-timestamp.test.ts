/**
 * Content-defined chunking and the timestamp keeper, in process: an insertion moves only the chunks around
 * it (what makes an application-code change cheap on the wire), the chunk list round-trips and is refused
 * when it does not match its manifest, and the keeper refuses an older timestamp and, with the clock set
 * back, one that expired by the newest time the device verified.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isRefusal, MemoryTrustStore, TrustChain } from '../../agent/trust/index.ts';
import { CDC_MAX_BYTES, cdcOfFile } from '../../agent/update/cdc.ts';
import { decodeChunkList } from '../../agent/update/manifest.ts';
import { prepareRelease, signManifest, signTimestamp } from '../../agent/update/manifest-sign.ts';
import { TimestampKeeper } from '../../agent/update/timestamp.ts';
import { makeOperator } from '../helpers/fleet.ts';

const dir = mkdtempSync(join(tmpdir(), 'edge-cdc-'));

test('an insertion changes only the chunks around it; every chunk is at most 64 KiB and they cover the file', async () => {
  const base = randomBytes(4 * 1024 * 1024);
  const changed = Buffer.concat([base.subarray(0, 1_500_000), Buffer.from('one line of application code changed'), base.subarray(1_500_000)]);
  writeFileSync(join(dir, 'a'), base);
  writeFileSync(join(dir, 'b'), changed);
  const [a, b] = [await cdcOfFile(join(dir, 'a')), await cdcOfFile(join(dir, 'b'))];
  const have = new Set(a.map((c) => c.sha256.toString('hex')));
  const fetch = b.filter((c) => !have.has(c.sha256.toString('hex')));
  assert.ok(fetch.length <= 2, `${fetch.length} chunks differ after one insertion`);
  let offset = 0;
  for (const c of b) {
    assert.equal(c.offset, offset);
    assert.ok(c.length <= CDC_MAX_BYTES);
    assert.equal(
      createHash('sha256')
        .update(changed.subarray(c.offset, c.offset + c.length))
        .digest('hex'),
      c.sha256.toString('hex'),
    );
    offset += c.length;
  }
  assert.equal(offset, changed.length);
});

test('the chunk list round-trips, and one that does not match the manifest is refused', async () => {
  const release = await prepareRelease({ path: join(dir, 'b'), version: '1.0.0', release: 1, arch: 'x64', target: { device: 'd' }, validMs: 60_000 });
  assert.equal(decodeChunkList(release.list, release.document).length, release.chunks.length);
  const bad = Buffer.from(release.list);
  bad[40]! ^= 1;
  assert.throws(
    () => decodeChunkList(bad, release.document),
    (err) => isRefusal(err, 'chunk_hash_mismatch'),
  );
  assert.throws(
    () => decodeChunkList(Buffer.concat([release.list, Buffer.alloc(36)]), release.document),
    (err) => isRefusal(err, 'oversize'),
  );
});

test('the timestamp keeper: older versions and, with the clock set back, expired ones are stale; freeze once the newest expired', async () => {
  const op = makeOperator();
  const chain = new TrustChain({ keys: [op.root.public], threshold: 1 }, new MemoryTrustStore());
  const release = await prepareRelease({ path: join(dir, 'a'), version: '1.0.0', release: 1, arch: 'x64', target: { device: 'd' }, validMs: 600_000 });
  const signing = { operator: op.key, certificate: op.certificate };
  const manifest = { ...signManifest(release.document, signing), document: release.document };
  const keeper = new TimestampKeeper(join(dir, 'state'));
  const now = Date.now();
  const old = signTimestamp(manifest, signing, 3_600_000, now - 7_200_000, 1);
  const fresh = signTimestamp(manifest, signing, 60_000, now, 2);
  assert.throws(
    () => keeper.accept(chain, old, now),
    (err) => isRefusal(err, 'stale_timestamp'),
  );
  keeper.accept(chain, fresh, now);
  assert.ok(keeper.vouches(manifest.id, now));
  // The clock set 2 hours back would find the old one valid; the keeper's floor (the newest issued) does not.
  assert.throws(
    () => keeper.accept(chain, old, now - 7_200_000),
    (err) => isRefusal(err, 'stale_timestamp'),
  );
  // Kept across a restart (a new keeper reads the file).
  const again = new TimestampKeeper(join(dir, 'state'));
  assert.equal(again.newest?.version, 2);
  assert.equal(again.frozen(now), false);
  assert.equal(again.frozen(now + 61_000), true);
  assert.equal(again.vouches(manifest.id, now + 61_000), false);
});
