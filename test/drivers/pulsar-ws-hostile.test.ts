import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pulsarOptions } from '../../drivers/sinks/pulsar/options.ts';
import { PulsarWsSink } from '../../drivers/sinks/pulsar/ws-sink.ts';
import { MAX_ERROR_BODY, openWebSocket, wsEndpoint } from '../../drivers/sinks/pulsar/ws-connect.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { isAgentError, type OutgoingBatch } from '../../agent/sdk/index.ts';
import { capturingLogger } from '../helpers/db.ts';
import { makeCertificates } from '../helpers/certs.ts';

const dir = mkdtempSync(join(tmpdir(), 'edge-pulsar-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function batch(stream: string, seq: number): OutgoingBatch {
  return { device: 'gw', stream, epoch: '00', seq, count: 1, bytes: new Uint8Array([seq]) };
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/**
 * A stand-in for a hung broker: a real TCP listener whose web service answers plain HTTP (so the sink's
 * probe finds it reachable) but accepts every WebSocket upgrade and never answers it.
 */
async function hungBroker() {
  const server = createHttpServer((_req, res) => res.end('[]'));
  const upgrades: Socket[] = [];
  const open = new Set<Socket>();
  let upgraded!: () => void;
  let waitingFor = 0;
  server.on('upgrade', (_req, socket: Socket) => {
    upgrades.push(socket);
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('end', () => socket.end()); // the client hung up: so do we (the server allows half-open sockets)
    socket.on('error', () => {});
    if (upgrades.length >= waitingFor) upgraded?.();
  });
  const port = await listen(server);
  return {
    port,
    upgrades,
    open,
    /** Resolves once `n` upgrade requests have arrived. */
    upgradesReach(n: number): Promise<void> {
      if (upgrades.length >= n) return Promise.resolve();
      waitingFor = n;
      return new Promise((resolve) => (upgraded = resolve));
    },
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('pulsar websocket sink against hostile brokers', () => {
  test('close() aborts producer opens hanging on a broker that never answers, and no attempt follows it', async (t) => {
    const broker = await hungBroker();
    t.after(() => broker.close());
    // connect_timeout far beyond the test: only close() can end these attempts.
    const options = pulsarOptions.parse({ url: `ws://127.0.0.1:${broker.port}`, connect_timeout: '10m' });
    const sink = new PulsarWsSink(options, { ...driverEnv({ log: capturingLogger().log, baseDir: dir }), device: 'gw' });
    await sink.connect();
    assert.equal(sink.connected, true, 'the probe found the web service');
    // Three series opening producers, and a second write queued behind each hung open.
    const writes = ['a', 'b', 'c'].flatMap((stream) => [sink.write(batch(stream, 1)), sink.write(batch(stream, 2))]);
    const outcomes = Promise.allSettled(writes);
    await broker.upgradesReach(3);
    const attemptsAtClose = broker.upgrades.length;
    await sink.close();
    const results = await outcomes;
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      const err = (result as PromiseRejectedResult).reason;
      assert.ok(isAgentError(err, 'SINK_UNAVAILABLE') && err.retryable, String(err));
      assert.match(err.message, /closing/);
    }
    assert.equal(broker.upgrades.length, attemptsAtClose, 'no producer open was attempted after close()');
    assert.equal(attemptsAtClose, 3, 'one open per series; the queued writes never opened their own');
    // The hung handshakes' sockets were destroyed by the client, not left to a timeout.
    await Promise.all(broker.upgrades.map((socket) => (socket.destroyed ? undefined : once(socket, 'close'))));
    assert.equal(broker.open.size, 0);
  });

  test('a refused handshake with a 50 MB error page: the message keeps a few KiB and the socket is dropped early', async () => {
    const total = 50 * 1024 * 1024;
    let written = 0;
    let finished = false;
    const server = createHttpServer((_req, res) => res.end('[]'));
    const ended = new Promise<void>((resolve) => {
      server.on('upgrade', (_req, socket: Socket) => {
        socket.on('error', () => {});
        socket.write(`HTTP/1.1 500 Server Error\r\nContent-Type: text/html\r\nContent-Length: ${total}\r\n\r\n<html><title>Error 500 proxy</title>`);
        const chunk = Buffer.alloc(64 * 1024, 'x');
        const pump = () => {
          while (!socket.destroyed && written < total) {
            written += chunk.length;
            if (!socket.write(chunk)) return socket.once('drain', pump);
          }
          finished = written >= total;
        };
        socket.on('close', () => resolve());
        pump();
      });
    });
    const port = await listen(server);
    const endpoint = wsEndpoint(pulsarOptions.parse({ url: `ws://127.0.0.1:${port}` }), dir);
    const err = await openWebSocket(endpoint, '/ws/v2/producer/persistent/public/default/t', 'producer p').then(
      () => assert.fail('the handshake must be refused'),
      (e: unknown) => e,
    );
    await ended;
    server.close();
    assert.ok(isAgentError(err, 'SINK_UNAVAILABLE') && err.retryable, String(err));
    assert.match(err.message, /HTTP 500 broker error: Error 500 proxy/);
    assert.ok(err.message.length < MAX_ERROR_BODY, `message of ${err.message.length} chars`);
    assert.equal(finished, false, `the client dropped the connection before the body ended (server wrote ${written} of ${total} bytes)`);
    assert.ok(written < total / 2, `server wrote ${written} bytes`);
  });

  test('a broker certificate that does not verify is "TLS verification failed", not "not reachable", and stays retryable', async () => {
    // A real TLS listener whose certificate is self-signed (the test CA's own certificate, used as the server's).
    const certs = makeCertificates(join(dir, 'self-signed'));
    const server = createHttpsServer({ cert: readFileSync(certs.ca), key: readFileSync(join(dir, 'self-signed', 'ca.key')) }, (_req, res) => res.end('[]'));
    const port = await listen(server as unknown as Server);
    const url = `wss://127.0.0.1:${port}`;

    const endpoint = wsEndpoint(pulsarOptions.parse({ url }), dir);
    const err = await openWebSocket(endpoint, '/ws/v2/producer/persistent/public/default/t', 'producer p').then(
      () => assert.fail('must not connect'),
      (e: unknown) => e,
    );
    assert.ok(isAgentError(err, 'SINK_UNAVAILABLE') && err.retryable, String(err));
    assert.match(err.message, /TLS verification failed: the certificate is not signed by a trusted CA .*\(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
    assert.equal(err.details?.unreachable, undefined, 'not classified as unreachable');

    const { log, lines } = capturingLogger();
    const sink = new PulsarWsSink(pulsarOptions.parse({ url, reconnect: { initial_delay: '1h' } }), { ...driverEnv({ log, baseDir: dir }), device: 'gw' });
    await sink.connect();
    assert.equal(sink.connected, false);
    const warning = lines.map((l) => JSON.parse(l) as { msg: string; err?: string }).find((l) => /pulsar not/.test(l.msg));
    assert.ok(warning, lines.join('\n'));
    assert.match(warning.msg, /TLS failed/);
    assert.match(String(warning.err), /TLS verification failed: .*DEPTH_ZERO_SELF_SIGNED_CERT/);
    await assert.rejects(
      sink.write(batch('s', 1)),
      (e: unknown) => isAgentError(e, 'SINK_UNAVAILABLE') && e.retryable && /TLS verification failed/.test(e.message),
    );
    await sink.close();
    server.close();
  });

  test('the broker host name is verified by default: a certificate of the trusted CA for another name is refused', async () => {
    const certs = makeCertificates(join(dir, 'elsewhere'), 'DNS:elsewhere.test');
    const server = createHttpsServer({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) }, (_req, res) => res.end('[]'));
    const port = await listen(server as unknown as Server);
    const path = '/ws/v2/producer/persistent/public/default/t';
    try {
      const refused = wsEndpoint(pulsarOptions.parse({ url: `wss://127.0.0.1:${port}`, tls: { ca: certs.ca } }), dir);
      const err = await openWebSocket(refused, path, 'producer p').then(
        () => assert.fail('must not connect'),
        (e: unknown) => e,
      );
      assert.ok(isAgentError(err, 'SINK_UNAVAILABLE') && err.retryable, String(err));
      assert.match(err.message, /TLS verification failed.*(ERR_TLS_CERT_ALTNAME_INVALID|altnames)/);
      // Control: a server whose certificate names 127.0.0.1, under the same settings otherwise: the handshake
      // passes (the upgrade then fails, that stand-in is no broker), so the name was the only fault above.
      const good = makeCertificates(join(dir, 'named'));
      const control = createHttpsServer({ cert: readFileSync(good.serverCert), key: readFileSync(good.serverKey) }, (_req, res) => res.end('[]'));
      const controlPort = await listen(control as unknown as Server);
      const named = wsEndpoint(pulsarOptions.parse({ url: `wss://127.0.0.1:${controlPort}`, tls: { ca: good.ca } }), dir);
      const other = await openWebSocket(named, path, 'producer p').then(
        () => undefined,
        (e: unknown) => e,
      );
      control.close();
      assert.doesNotMatch(String(other), /TLS verification failed/);
    } finally {
      server.close();
    }
  });
});
