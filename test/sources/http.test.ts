/**
 * The http source in-process with a real queue and the runtime's source runner, spoken to by a real HTTP
 * client (fetch): what each answer means for what the queue holds.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodeCbor } from 'cbor-x';
import { Queue } from '../../agent/queue/queue.ts';
import { SourceRunner } from '../../agent/runtime/source-runner.ts';
import { silentLogger } from '../../agent/log.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { configSchemas } from '../../agent/app.ts';
import type { SourceConfig } from '../../agent/config/schema.ts';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';
import { httpSource } from '../../drivers/sources/http/index.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';
import { makeCertificates } from '../helpers/certs.ts';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';

const { sourceSchema } = configSchemas();

interface Endpoint {
  url: string;
  port: number;
  queue: Queue;
  stop: () => Promise<void>;
}

async function endpoint(dir: string, options: Record<string, unknown>, queueOverrides: Parameters<typeof testQueueOptions>[1] = {}): Promise<Endpoint> {
  const queue = Queue.open(
    testQueueOptions(join(dir, `q-${Math.random()}.db`), { commitIntervalMs: 200, codec: { compression: 'none', level: undefined }, ...queueOverrides }),
  );
  const port = await freePort();
  const config = sourceSchema.parse({ type: 'http', name: 'ingest', port, on_start_error: 'fail', ...options }) as SourceConfig;
  const runner = new SourceRunner(
    httpSource,
    { ...config, stream: config.name },
    queue,
    { log: silentLogger, baseDir: dir },
    { initialMs: 10, maxMs: 100 },
    silentLogger,
  );
  await runner.start();
  return {
    url: `http://127.0.0.1:${port}/ingest`,
    port,
    queue,
    stop: async () => {
      await runner.stop();
      queue.close();
    },
  };
}

function queued(queue: Queue): (AgentRecord & { stream: string })[] {
  const out: (AgentRecord & { stream: string })[] = [];
  const busy = new Set<string>();
  for (let b = queue.nextBatch(busy); b; b = queue.nextBatch(busy)) {
    busy.add(b.key);
    for (const r of decodeRecords(decompress(b.body, b.compression, 1 << 26))) out.push({ ...r, stream: b.stream });
  }
  return out;
}

const post = (url: string, body: string | Uint8Array | ReadableStream<Uint8Array>, type = 'application/json', headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': type, ...headers }, body: body as RequestInit['body'], duplex: 'half' } as RequestInit);

describe('http source', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-http-'));
  let open: Endpoint;
  before(async () => {
    writeFileSync(join(dir, 'tokens'), 'old-token\nnew-token\n', { mode: 0o600 });
    open = await endpoint(dir, { streams: ['readings', 'events'], token_file: 'tokens', max_body_bytes: '4KiB', max_records: 50, commit_within: '150ms' });
  });
  after(async () => {
    await open.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const auth = { authorization: 'Bearer new-token' };

  it('answers 202 only once the records are committed, each stream at its own route', async () => {
    const before = open.queue.stats().records;
    const res = await post(`${open.url}/readings`, JSON.stringify([{ n: 1 }, { n: 2 }]), 'application/json', auth);
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { accepted: 2 });
    // The commit comes 150 ms after the emit: an answer before the commit would find the queue without them.
    assert.equal(open.queue.stats().records, before + 2, 'committed when the 202 came');
    const lines = `{"n":3}\n\n{"n":4}\n`;
    assert.equal((await post(`${open.url}/events`, lines, 'application/x-ndjson', { authorization: 'Bearer old-token' })).status, 202);
    assert.equal((await post(`${open.url}/events`, encodeCbor([{ n: 5 }]), 'application/cbor', auth)).status, 202);
    const byStream = queued(open.queue).map((r) => `${r.stream}:${r.n}`);
    for (const want of ['readings:1', 'readings:2', 'events:3', 'events:4', 'events:5']) assert.ok(byStream.includes(want), want);
    assert.equal((await post(`${open.url}/other`, '{}', 'application/json', auth)).status, 404);
  });

  it('refuses without keeping anything: 401, 400, 413 (declared and streamed), 415', async () => {
    const before = open.queue.stats().records;
    const noToken = await post(`${open.url}/readings`, '{"n":1}');
    assert.equal(noToken.status, 401);
    assert.equal(noToken.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await post(`${open.url}/readings`, '{"n":1}', 'application/json', { authorization: 'Bearer new-tokeN' })).status, 401);
    const badLine = await post(`${open.url}/readings`, '{"n":1}\n{"n":\n', 'application/x-ndjson', auth);
    assert.equal(badLine.status, 400);
    assert.match(((await badLine.json()) as { message: string }).message, /^line 2: /);
    const notObject = await post(`${open.url}/readings`, '[{"n":1}, 7]', 'application/json', auth);
    assert.equal(notObject.status, 400);
    assert.match(((await notObject.json()) as { message: string }).message, /element 1/);
    assert.equal((await post(`${open.url}/readings`, JSON.stringify(Array.from({ length: 51 }, () => ({}))), 'application/json', auth)).status, 413);
    assert.equal((await post(`${open.url}/readings`, JSON.stringify({ pad: 'x'.repeat(5000) }), 'application/json', auth)).status, 413);
    // A body without Content-Length that never ends: an endpoint that read bodies whole would never answer.
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(1024).fill(0x20));
      },
    });
    const streamed = await post(`${open.url}/readings`, endless, 'application/json', auth);
    assert.equal(streamed.status, 413);
    assert.equal(((await streamed.json()) as { error: string }).error, 'body_too_large');
    assert.equal((await post(`${open.url}/readings`, 'n=1', 'text/plain', auth)).status, 415);
    assert.equal(open.queue.stats().records, before, 'nothing of a refused request was kept');
  });

  it('answers 503 with Retry-After while the queue is full under block, and keeps nothing of it', async () => {
    const full = await endpoint(dir, { auth: 'none' }, { maxBytes: 8192, fullPolicy: 'block', reserveBytes: 0 });
    try {
      const pad = 'p'.repeat(900);
      let status = 202;
      let accepted = 0;
      for (let i = 0; i < 100 && status === 202; i++) {
        const res = await post(`${full.url}/ingest`, JSON.stringify([{ i, pad: `${pad}${Math.random()}` }]));
        status = res.status;
        if (status === 202) accepted++;
        else {
          assert.equal(((await res.json()) as { error: string }).error, 'queue_full');
          assert.equal(res.headers.get('retry-after'), '1');
        }
      }
      assert.equal(status, 503, 'the queue filled up');
      assert.equal(full.queue.stats().records, accepted, 'exactly the 202-answered records are queued');
    } finally {
      await full.stop();
    }
  });

  it('serves HTTPS with client certificates when tls.ca is set: 202 with one, no handshake without', async () => {
    const certs = makeCertificates(join(dir, 'pki'));
    const tls = await endpoint(dir, { auth: 'none', tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca } });
    const url = new URL(`${tls.url.replace('http:', 'https:')}/ingest`);
    const send = (withClientCert: boolean) =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest(
          url,
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            ca: readFileSync(certs.ca),
            ...(withClientCert ? { cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) } : {}),
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end('{"n":1}');
      });
    try {
      assert.equal(await send(true), 202);
      await assert.rejects(send(false), 'no client certificate, no request');
      assert.equal(tls.queue.stats().records, 1);
    } finally {
      await tls.stop();
    }
  });

  it('503 busy beyond max_pending_bytes, and 503 stopping for a request whose body ends after the stop began', async () => {
    const ep = await endpoint(dir, { auth: 'none', max_pending_bytes: 100 });
    const socket = connect(ep.port, '127.0.0.1');
    let stopped = false;
    try {
      // A request declaring 80 bytes and sending half: its 80 bytes are held as received-not-committed.
      let answer = '';
      // The whole answer: its body is the last thing on the connection (Connection: close, or closed at stop).
      const answered = new Promise<void>((resolve) => {
        socket.on('data', (d) => {
          answer += d;
          if (answer.endsWith('}')) resolve();
        });
        socket.once('close', () => resolve());
      });
      const body = JSON.stringify({ pad: 'x'.repeat(70) });
      assert.equal(Buffer.byteLength(body), 80);
      socket.write(`POST /ingest/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n${body.slice(0, 40)}`);
      // Observable from outside: once those bytes are held, a second request of 48 bytes is refused as busy.
      let busy: Response | undefined;
      for (let i = 0; i < 500 && busy === undefined; i++) {
        const res = await post(`${ep.url}/ingest`, JSON.stringify({ pad: 'y'.repeat(38) }));
        if (res.status === 503) busy = res;
        else assert.equal(res.status, 202);
      }
      assert.ok(busy, 'a request beyond max_pending_bytes was refused');
      assert.equal(((await busy.json()) as { error: string }).error, 'busy');
      stopped = true;
      const stopping = ep.stop();
      // Not a half-close: the server would drop the connection without answering.
      socket.write(body.slice(40));
      await answered;
      await stopping;
      assert.match(answer, /^HTTP\/1\.1 503 /);
      assert.match(answer, /"error":"stopping"/); // answered before its emit: nothing of it was kept
    } finally {
      socket.destroy();
      if (!stopped) await ep.stop();
    }
  });
});
