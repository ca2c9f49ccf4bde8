import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { mysqlSource } from '../../drivers/sources/mysql/index.ts';
import { isAgentError, type SourceDriver } from '../../agent/sdk/index.ts';
import { polledSource, recordingContext } from '../helpers/db.ts';
import { makeCertificates } from '../helpers/certs.ts';
import { startTlsMariadb, tlsMariadbUnavailable, type TlsDatabase } from '../helpers/tls-databases.ts';

const driver = mysqlSource as unknown as SourceDriver;
const unavailable = tlsMariadbUnavailable();
if (unavailable) console.log(`# skipping the MariaDB TLS tests: ${unavailable}`);

// A private MariaDB of this test's own: require_secure_transport, a server certificate for 127.0.0.1/localhost.
let server: TlsDatabase;
let base: Record<string, unknown>;

before(async () => {
  if (unavailable) return;
  server = await startTlsMariadb();
  base = { host: '127.0.0.1', port: server.port, user: 'root', database: 'plant', table: 'readings', connect_timeout: '5s' };
  const admin = await mysql.createConnection({ host: '127.0.0.1', port: server.port, user: 'root', ssl: { ca: readFileSync(server.certs.ca) } });
  await admin.query('CREATE DATABASE plant');
  await admin.query('CREATE TABLE plant.readings (id bigint AUTO_INCREMENT PRIMARY KEY, value int)');
  await admin.query('INSERT INTO plant.readings (value) VALUES (1), (2), (3), (4), (5)');
  await admin.end();
});
after(async () => {
  await server?.stop();
});

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

describe('mysql source over TLS (a private MariaDB requiring secure transport)', { skip: unavailable }, () => {
  it('reads rows with tls.ca, the certificate checked against host 127.0.0.1, over TLS', async () => {
    const src = await polledSource(driver, { ...base, tls: { ca: 'certs/ca.crt' } }, { baseDir: server.dir });
    const { ctx, records } = recordingContext();
    await src.gather(ctx);
    await src.close?.();
    assert.deepEqual(
      records().map((r) => r.value),
      [1, 2, 3, 4, 5],
    );
  });

  it('without tls the server refuses the connection, and the error points at tls', async () => {
    const { message, retryable } = await pollFails({});
    assert.match(message, /access denied for user root \(or the server requires TLS: configure `tls`\)/);
    assert.equal(retryable, true);
  });

  it('with a CA that did not sign the server certificate: "TLS verification failed", not "connection lost"', async () => {
    const other = makeCertificates(join(server.dir, 'other-ca'));
    const { message, retryable, counts } = await pollFails({ tls: { ca: other.ca } });
    assert.match(message, /TLS verification failed: the certificate is not signed by a trusted CA \(set tls\.ca/);
    assert.doesNotMatch(message, /connection lost or refused/);
    assert.equal(retryable, true);
    assert.equal(counts.get('tls_errors'), 1);
  });

  it('the host name is verified: a host the certificate does not carry fails with a name mismatch before credentials are sent', async () => {
    // The server listens on 127.0.0.2 too; its certificate names 127.0.0.1 and localhost only. (mysql2 alone
    // would compare an address with "localhost" and let this through.)
    const { message, counts } = await pollFails({ host: '127.0.0.2', tls: { ca: server.certs.ca } });
    assert.match(message, /TLS verification failed: the certificate does not name the host connected to .*127\.0\.0\.2.*ERR_TLS_CERT_ALTNAME_INVALID/);
    assert.equal(counts.get('tls_errors'), 1);
  });

  it('reject_unauthorized: false encrypts without verifying', async () => {
    const src = await polledSource(driver, { ...base, tls: { reject_unauthorized: false } });
    const { ctx, records } = recordingContext();
    await src.gather(ctx);
    await src.close?.();
    assert.equal(records().length, 5);
  });
});
