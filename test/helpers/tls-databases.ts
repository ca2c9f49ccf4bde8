import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from '../../scripts/lib/ports.ts';
import { makeCertificates } from './certs.ts';

/** A database server of the test's own, TLS only, on a free loopback port; stopped by its PID. */
export interface TlsDatabase {
  port: number;
  /** PEM files: the CA that signed the server certificate (for 127.0.0.1 and localhost), and more. */
  certs: ReturnType<typeof makeCertificates>;
  dir: string;
  stop(): Promise<void>;
}

/** Why a private TLS PostgreSQL cannot be started here, or undefined when it can. */
export function tlsPostgresUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (to run the server as the postgres OS user)';
  if (!postgresBin()) return 'no PostgreSQL server binaries under /usr/lib/postgresql/*/bin';
  try {
    execFileSync('id', ['postgres'], { stdio: 'ignore' });
  } catch {
    return 'no postgres OS user';
  }
  return undefined;
}

function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(root, v, 'bin')).find((bin) => existsSync(join(bin, 'initdb')));
}

/** Watches a server process: its exit, its failure to start, and the line of its log saying it is ready. */
function supervised(child: ChildProcess, name: string, ready: RegExp): { exited: Promise<void>; failed: Promise<never>; ready: Promise<void> } {
  let stderr = '';
  let isReady!: () => void;
  const readyLine = new Promise<void>((resolve) => (isReady = resolve));
  child.stderr?.on('data', (d) => {
    stderr += d;
    if (ready.test(stderr)) isReady();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const failed = exited.then(() => {
    throw new Error(`${name} exited: ${stderr.trim()}`);
  });
  failed.catch(() => {});
  return { exited, failed, ready: Promise.race([readyLine, failed]) };
}

/**
 * PostgreSQL with `ssl = on`, a server certificate for 127.0.0.1/localhost signed by a CA of its own, and a
 * pg_hba.conf that accepts TCP connections over TLS only (`hostssl`, trust). Runs as the postgres OS user
 * (the server refuses root); the user `postgres` and database `postgres` exist.
 */
export async function startTlsPostgres(): Promise<TlsDatabase> {
  const bin = postgresBin()!;
  const dir = mkdtempSync(join(tmpdir(), 'edge-pg-tls-'));
  const certs = makeCertificates(join(dir, 'certs'));
  const data = join(dir, 'data');
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
  chownSync(dir, uid, gid);
  const asPostgres = (command: string, args: string[]) => ['-u', 'postgres', '--', join(bin, command), ...args];
  execFileSync('runuser', asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync']), { stdio: ['ignore', 'ignore', 'pipe'] });
  for (const file of ['server.crt', 'server.key']) {
    copyFileSync(join(certs.ca, '..', file), join(data, file));
    chownSync(join(data, file), uid, gid);
    chmodSync(join(data, file), 0o600);
  }
  const port = await freePort();
  appendFileSync(
    join(data, 'postgresql.conf'),
    [
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      'ssl = on',
      "ssl_cert_file = 'server.crt'",
      "ssl_key_file = 'server.key'",
      'fsync = off',
      '',
    ].join('\n'),
  );
  writeFileSync(join(data, 'pg_hba.conf'), 'local all all trust\nhostssl all all 127.0.0.1/32 trust\n');
  const child = spawn('runuser', asPostgres('postgres', ['-D', data]), { stdio: ['ignore', 'ignore', 'pipe'] });
  const run = supervised(child, 'private PostgreSQL', /database system is ready to accept connections/);
  await run.ready;
  await Promise.race([waitForPort(port), run.failed]);
  return {
    port,
    certs,
    dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // The server's own PID (runuser forks it): SIGINT is its fast shutdown.
        const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
        process.kill(pid, 'SIGINT');
        await run.exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Why a private TLS MariaDB cannot be started here, or undefined when it can. */
export function tlsMariadbUnavailable(): string | undefined {
  for (const command of ['mariadb-install-db', 'mariadbd']) {
    try {
      execFileSync('sh', ['-c', `command -v ${command} || test -x /usr/sbin/${command}`], { stdio: 'ignore' });
    } catch {
      return `no ${command}`;
    }
  }
  return undefined;
}

/**
 * MariaDB with a server certificate for 127.0.0.1/localhost signed by a CA of its own, and
 * require_secure_transport (a connection without TLS is refused). A temp datadir and socket; the account
 * root has no password. Runs as the invoking user (`--user=root` when that is root).
 */
export async function startTlsMariadb(): Promise<TlsDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-mariadb-tls-'));
  const certs = makeCertificates(join(dir, 'certs'));
  const data = join(dir, 'data');
  const user = process.getuid?.() === 0 ? ['--user=root'] : [];
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, ...user, '--auth-root-authentication-method=normal', '--skip-test-db'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const port = await freePort();
  const server = existsSync('/usr/sbin/mariadbd') ? '/usr/sbin/mariadbd' : 'mariadbd';
  const child = spawn(
    server,
    [
      '--no-defaults',
      `--datadir=${data}`,
      ...user,
      `--port=${port}`,
      '--bind-address=127.0.0.1,127.0.0.2', // 127.0.0.2: an address the server certificate does not carry
      `--socket=${join(dir, 'mariadb.sock')}`,
      `--pid-file=${join(dir, 'mariadb.pid')}`,
      `--ssl-ca=${certs.ca}`,
      `--ssl-cert=${certs.serverCert}`,
      `--ssl-key=${certs.serverKey}`,
      '--require-secure-transport=ON',
      '--innodb-flush-log-at-trx-commit=0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const run = supervised(child, 'private MariaDB', /ready for connections/);
  await run.ready;
  await Promise.race([waitForPort(port), run.failed]);
  return {
    port,
    certs,
    dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGTERM');
        await run.exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
