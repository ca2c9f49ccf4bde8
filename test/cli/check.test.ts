import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { makeCertificates } from '../helpers/certs.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';

interface Result {
  code: number;
  report: { ok: boolean; failed: number; lines: { check: string; status: string; message: string }[] };
}

function check(config: string): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['agent/cli/main.ts', 'check', '--config', config, '--json'], (err, stdout) => {
      resolve({ code: err ? Number(err.code) : 0, report: JSON.parse(stdout) as Result['report'] });
    });
  });
}

const line = (r: Result, check: string) => r.report.lines.filter((l) => l.check === check);

/** A server certificate for 127.0.0.1 that expired in 2025, signed by `ca`, made with `openssl ca`. */
function expiredCertificate(dir: string, ca: { crt: string; key: string }): { cert: string; key: string } {
  mkdirSync(join(dir, 'db'), { recursive: true });
  writeFileSync(join(dir, 'db', 'index.txt'), '');
  writeFileSync(join(dir, 'db', 'serial'), '01\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    '[ca]\ndefault_ca = d\n[d]\ndatabase = db/index.txt\nserial = db/serial\nnew_certs_dir = db\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n[ext]\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n',
  );
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'old.key', '-out', 'old.csr', '-subj', '/CN=localhost');
  run(
    'ca',
    '-batch',
    '-config',
    'ca.cnf',
    '-cert',
    ca.crt,
    '-keyfile',
    ca.key,
    '-in',
    'old.csr',
    '-out',
    'old.crt',
    '-startdate',
    '20250101000000Z',
    '-enddate',
    '20250201000000Z',
    '-extensions',
    'ext',
  );
  return { cert: join(dir, 'old.crt'), key: join(dir, 'old.key') };
}

test('check: a good gateway (TLS broker, keys 0600) is all ok, exit 0; text output has a verdict', async () => {
  const ws = await workspace();
  const certs = makeCertificates(join(ws.dir, 'pki'));
  const broker = await startMosquitto({ extra: [`certfile ${certs.serverCert}`, `keyfile ${certs.serverKey}`] });
  try {
    const yaml = agentYaml(`mqtts://127.0.0.1:${broker.port}`, { sources: '  - { type: synthetic, name: gen, rate: 1, count: 1 }' }).replace(
      '  reconnect:',
      `  tls: { ca: ${certs.ca} }\n  reconnect:`,
    );
    const config = writeConfig(ws.dir, yaml);
    const r = await check(config.path);
    assert.equal(r.code, 0, JSON.stringify(r.report.lines, null, 1));
    assert.ok(r.report.ok);
    for (const name of ['config', 'keys', 'queue', 'sink (mqtt) dns', 'sink (mqtt) tcp', 'sink (mqtt) tls', 'clock', 'disk']) {
      assert.equal(line(r, name)[0]?.status, 'ok', `${name}: ${JSON.stringify(r.report.lines)}`);
    }
    // Made for two days: ok, but inside the warning window.
    assert.equal(line(r, 'sink (mqtt) certificate')[0]?.status, 'warn');
    const text = execFileSync(process.execPath, ['agent/cli/main.ts', 'check', '--config', config.path], { encoding: 'utf8' });
    assert.match(text, /^ok {4}config/m);
    assert.match(text, /^ok: \d+ checks, 0 failed, 1 warnings$/m);
  } finally {
    await broker.stop();
    ws.cleanup();
  }
});

test('check: private key readable by others, unreachable broker, expired certificate, damaged queue: each fails, exit 1', async () => {
  const ws = await workspace();
  const certs = makeCertificates(join(ws.dir, 'pki'));
  const old = expiredCertificate(join(ws.dir, 'pki'), { crt: certs.ca, key: join(ws.dir, 'pki', 'ca.key') });
  const expired = await startMosquitto({ extra: [`certfile ${old.cert}`, `keyfile ${old.key}`] });
  // A port that was free a moment ago and has nothing listening now.
  const closed = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  try {
    chmodSync(join(ws.dir, 'keys', 'device.key'), 0o644);
    mkdirSync(join(ws.dir, 'data'), { recursive: true });
    writeFileSync(join(ws.dir, 'data', 'queue.db'), Buffer.alloc(4096, 0x5a));
    const sources = '  - { type: synthetic, name: gen, rate: 1, count: 1 }';
    const tlsYaml = agentYaml(`mqtts://127.0.0.1:${expired.port}`, { sources }).replace('  reconnect:', `  tls: { ca: ${certs.ca} }\n  reconnect:`);
    const r = await check(writeConfig(ws.dir, tlsYaml).path);
    assert.equal(r.code, 1);
    assert.equal(r.report.ok, false);
    assert.match(line(r, 'keys')[0]?.message ?? '', /accessible by others \(mode 644\)/);
    assert.equal(line(r, 'keys')[0]?.status, 'fail');
    assert.equal(line(r, 'queue')[0]?.status, 'fail', JSON.stringify(line(r, 'queue')));
    assert.equal(line(r, 'sink (mqtt) tcp')[0]?.status, 'ok');
    assert.equal(line(r, 'sink (mqtt) tls')[0]?.status, 'fail');
    assert.match(line(r, 'sink (mqtt) tls')[0]?.message ?? '', /CERT_HAS_EXPIRED|validity period/);
    assert.equal(line(r, 'sink (mqtt) certificate')[0]?.status, 'fail');
    assert.match(line(r, 'sink (mqtt) certificate')[0]?.message ?? '', /expired .*2025/);

    const unreachable = await check(writeConfig(ws.dir, agentYaml(`mqtt://127.0.0.1:${closed}`, { sources }), 'closed.yaml').path);
    assert.equal(unreachable.code, 1);
    assert.equal(line(unreachable, 'sink (mqtt) tcp')[0]?.status, 'fail');
    assert.match(line(unreachable, 'sink (mqtt) tcp')[0]?.message ?? '', /ECONNREFUSED/);
    const nowhere = await check(writeConfig(ws.dir, agentYaml('mqtt://no-such-host.invalid:1883', { sources }), 'dns.yaml').path);
    assert.equal(line(nowhere, 'sink (mqtt) dns')[0]?.status, 'fail');
  } finally {
    await expired.stop();
    ws.cleanup();
  }
});
