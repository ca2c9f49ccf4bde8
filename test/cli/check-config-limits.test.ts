/**
 * check-config holds a gateway's batch settings against what a centre accepts: above a centre's defaults a
 * warning (exit 0), above the receiver of the same file an error (exit 2), each at the setting's line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

function checkConfig(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) =>
    execFile(process.execPath, ['agent/cli/main.ts', 'check-config', '--schema-only', file], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    ),
  );
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-check-limits-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const gateway = (batch: string, receiver = '') => `device: { id: gw-01 }
sink: { type: mqtt, url: "mqtt://127.0.0.1:1" }
batch:
${batch}
${receiver}`;

test('the default batch settings pass; batches a default centre refuses are warnings at their lines', async () => {
  writeFileSync(join(dir, 'ok.yaml'), gateway('  compression: deflate'));
  const ok = await checkConfig(join(dir, 'ok.yaml'));
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stderr, '');
  writeFileSync(join(dir, 'big.yaml'), gateway('  max_bytes: 4MiB'));
  const big = await checkConfig(join(dir, 'big.yaml'));
  assert.equal(big.code, 0, big.stderr);
  assert.match(
    big.stderr,
    /warning: .*big\.yaml:4:\d+ batch\.max_bytes: batches of up to 4194304 bytes of CBOR exceed receiver\.max_batch_bytes of a centre with default limits \(524288\)/,
  );
  assert.match(big.stderr, /batch\.max_bytes: a batch of 4194304 bytes that does not compress seals to more than receiver\.max_envelope_bytes/);
});

test("batches this file's own receiver refuses are errors", async () => {
  writeFileSync(join(dir, 'own.yaml'), gateway('  max_records: 5000', 'receiver:\n  enabled: true\n  max_records: 1000\n'));
  const own = await checkConfig(join(dir, 'own.yaml'));
  assert.equal(own.code, 2, own.stderr);
  assert.match(own.stderr, /own\.yaml:4:\d+ batch\.max_records: batches of up to 5000 records exceed receiver\.max_records of this file’s receiver \(1000\)/);
});
