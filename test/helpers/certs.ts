import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Mosquitto, startMosquitto } from '../../scripts/lib/mosquitto.ts';

/**
 * A throwaway PKI made with the openssl command: a CA, a server certificate for 127.0.0.1/localhost (or the
 * names in `serverNames`, as subjectAltName entries), and a client certificate, all signed by the CA. Returns
 * the file paths.
 */
export function makeCertificates(
  dir: string,
  serverNames = 'IP:127.0.0.1,DNS:localhost',
): { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string } {
  mkdirSync(dir, { recursive: true });
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=edge-test-ca',
  );
  writeFileSync(join(dir, 'server.ext'), `subjectAltName=${serverNames}\n`);
  for (const [name, subject, ext] of [
    ['server', '/CN=localhost', ['-extfile', 'server.ext']],
    ['client', '/CN=gw-tls', []],
  ] as const) {
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', ...ext);
  }
  return {
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
}

/** Mosquitto's settings for a TLS listener that demands a client certificate signed by `certs.ca` and takes its name as the user. */
export function mutualTlsListener(certs: ReturnType<typeof makeCertificates>): string[] {
  return [`cafile ${certs.ca}`, `certfile ${certs.serverCert}`, `keyfile ${certs.serverKey}`, 'require_certificate true', 'use_identity_as_username true'];
}

/** A temporary folder with certificates and a real Mosquitto listening with `mutualTlsListener` on them. */
export interface MutualTlsBroker {
  readonly dir: string;
  readonly certs: ReturnType<typeof makeCertificates>;
  readonly broker: Mosquitto;
  /** Stops the broker by its PID and removes the folder. */
  stop(): Promise<void>;
}

export async function startMutualTlsBroker(prefix: string): Promise<MutualTlsBroker> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const certs = makeCertificates(dir);
  const broker = await startMosquitto({ extra: mutualTlsListener(certs) });
  return {
    dir,
    certs,
    broker,
    stop: async () => {
      await broker.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
