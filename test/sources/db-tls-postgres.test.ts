import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { postgresSource } from '../../drivers/sources/postgres/index.ts';
import { isAgentError, type SourceDriver } from '../../agent/sdk/index.ts';
import { polledSource, recordingContext } from '../helpers/db.ts';
import { makeCertificates } from '../helpers/certs.ts';
import { startTlsPostgres, tlsPostgresUnavailable, type TlsDatabase } from '../helpers/tls-databases.ts';

const driver = postgresSource as unknown as SourceDriver;
const unavailable = tlsPostgresUnavailable();
if (unavailable) console.log(`# skipping the PostgreSQL TLS tests: ${unavailable}`);

// A private PostgreSQL of this test's own: TLS only (hostssl), a server certificate for 127.0.0.1/localhost.
let server: TlsDatabase;
let base: Record<string, unknown>;

before(async () => {
  if (unavailable) return;
  server = await startTlsPostgres();
  base = { host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres', table: 'readings', connect_timeout: '5s' };
  const admin = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres', ssl: { ca: readFileSync(server.certs.ca) } });
  await admin.connect();
  await admin.query('CREATE TABLE readings (id bigserial PRIMARY KEY, value int)');
  await admin.query('INSERT INTO readings (value) SELECT n FROM generate_series(1, 5) n');
  await admin.end();
});
after(async () => {
  await server?.stop();
});

/** The error of one poll: a SOURCE_FAILED AgentError, with the counter it added. */
async function pollFails(options: Record<string, unknown>): Promise<{ message: string; retryable: boolean; counts: Map<string, number> }> {
  const src = await polledSource(driver, { ...base, ...options });
  const { ctx, counts, emits } = recordingContext();
  const err = await src.gather(ctx).then(
    () => assert.fail('the poll must fail'),
    (e: unknown) => e,
  );
  await src.close?.();
  assert.ok(isAgentError(err) && err.code === 'SOURCE_FAILED', String(err));
  assert.equal(emits.length, 0, 'no rows may be read');
  return { message: err.message, retryable: err.retryable, counts };
}

describe('postgres source over TLS (a private TLS-only server)', { skip: unavailable }, () => {
  it('reads rows with tls.ca, the server name verified against host 127.0.0.1', async () => {
    const src = await polledSource(driver, { ...base, tls: { ca: server.certs.ca } });
    const { ctx, records } = recordingContext();
    await src.gather(ctx);
    await src.close?.();
    assert.deepEqual(
      records().map((r) => r.value),
      [1, 2, 3, 4, 5],
    );
  });

  it('reads rows with a relative tls.ca, resolved against the config folder, and servername localhost', async () => {
    const src = await polledSource(driver, { ...base, tls: { ca: 'certs/ca.crt', servername: 'localhost' } }, { baseDir: server.dir });
    const { ctx, records } = recordingContext();
    await src.gather(ctx);
    await src.close?.();
    assert.equal(records().length, 5);
  });

  it('without tls the server refuses the connection, and the error says TLS is required', async () => {
    const { message, retryable, counts } = await pollFails({});
    assert.match(message, /accepts only TLS connections.*no encryption.*configure `tls`/);
    assert.equal(retryable, true);
    assert.equal(counts.get('tls_errors'), 1);
  });

  it('with a CA that did not sign the server certificate: "TLS verification failed", not "unreachable"', async () => {
    const other = makeCertificates(join(server.dir, 'other-ca'));
    const { message, retryable, counts } = await pollFails({ tls: { ca: other.ca } });
    assert.match(message, /TLS verification failed: the certificate is not signed by a trusted CA \(set tls\.ca/);
    assert.doesNotMatch(message, /connection lost or refused|unreachable/);
    assert.equal(retryable, true);
    assert.equal(counts.get('tls_errors'), 1);
  });

  it('with no tls.ca (system CAs only) the private CA is not trusted', async () => {
    const { message } = await pollFails({ tls: {} });
    assert.match(message, /TLS verification failed: .*not signed by a trusted CA/);
  });

  it('with a servername the certificate does not carry: "TLS verification failed" naming the name mismatch', async () => {
    const { message, counts } = await pollFails({ tls: { ca: server.certs.ca, servername: 'db.example.net' } });
    assert.match(message, /TLS verification failed: the certificate does not name the host connected to .*db\.example\.net.*ERR_TLS_CERT_ALTNAME_INVALID/);
    assert.equal(counts.get('tls_errors'), 1);
  });

  it('reject_unauthorized: false encrypts without verifying (any CA, any name)', async () => {
    const src = await polledSource(driver, { ...base, tls: { reject_unauthorized: false, servername: 'db.example.net' } });
    const { ctx, records } = recordingContext();
    await src.gather(ctx);
    await src.close?.();
    assert.equal(records().length, 5);
  });

  it('an unreadable tls.ca is a clear configuration error naming the file', async () => {
    const src = await polledSource(driver, { ...base, tls: { ca: 'no-such-ca.pem' } }, { baseDir: server.dir });
    await assert.rejects(src.gather(recordingContext().ctx), /cannot read TLS CA file no-such-ca\.pem/);
    await src.close?.();
  });
});
