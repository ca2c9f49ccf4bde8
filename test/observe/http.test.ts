/**
 * The endpoint's HTTP behaviour, request by request (agent/observe/router.ts and routes.ts on node:http):
 * content types and the security headers on every answer, HEAD without a body, 404 for what is not a route,
 * an action's refusals in their order (403 cross-origin, 413 body, 401 token), a form post's redirect, and
 * the tap's stream (ended at max_bytes with a last line that says so).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readToken } from '../../agent/observe/token.ts';
import { configPaths } from '../../agent/config/paths.ts';
import { EXPOSITION_CONTENT_TYPE } from '../../agent/observe/exposition.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { type ObservedAgent, startObservedAgent } from '../helpers/observe.ts';
import { startSilentBroker } from '../helpers/fake-silent-broker.ts';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with node:http, so the test controls every header (Host, Transfer-Encoding) and the method. */
function raw(url: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string; chunked?: boolean } = {}): Promise<Raw> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: init.method ?? 'GET', headers: init.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (init.chunked) {
      req.write(init.body ?? '');
      req.end();
    } else req.end(init.body);
  });
}

describe('the endpoint over HTTP', () => {
  let o: ObservedAgent;
  let token: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    const ws = await workspace();
    const silent = await startSilentBroker();
    const loaded = writeConfig(
      ws.dir,
      agentYaml(silent.url, {
        sources: '  - { type: synthetic, name: gen, rate: 200, batch: 20 }',
        extra: 'http: { enabled: true, listen: "127.0.0.1:0" }\n',
      }),
    );
    o = await startObservedAgent(loaded);
    token = readToken(configPaths(loaded).dataDir)!;
    cleanup = async () => {
      await o.stop();
      await silent.close();
      ws.cleanup();
    };
  });
  after(() => cleanup());

  it('answers each route with its content type, and every answer with the security headers', async () => {
    const expected: [string, number, string][] = [
      ['/livez', 200, 'text/plain; charset=UTF-8'],
      ['/readyz', 0, 'application/json'], // 200 within the sink's grace, 503 after it (the silent broker never connects)
      ['/metrics', 200, EXPOSITION_CONTENT_TYPE],
      ['/api/status', 200, 'application/json'],
      ['/api/history', 200, 'application/json'],
      ['/', 200, 'text/html; charset=UTF-8'],
      ['/assets/uplot.js', 200, 'text/javascript; charset=utf-8'],
      ['/assets/uplot.css', 200, 'text/css; charset=utf-8'],
      ['/assets/page.js', 200, 'text/javascript; charset=utf-8'],
      ['/assets/page.css', 200, 'text/css; charset=utf-8'],
      ['/no/such/route', 404, 'text/plain; charset=UTF-8'],
      ['/livez/', 404, 'text/plain; charset=UTF-8'],
    ];
    for (const [path, status, type] of expected) {
      const r = await raw(o.http.url, path);
      if (status === 0) assert.ok(r.status === 200 || r.status === 503, `${path}: ${r.status}`);
      else assert.equal(r.status, status, path);
      assert.equal(r.headers['content-type'], type, path);
      assert.equal(r.headers['cache-control'], 'no-store', path);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', path);
      assert.match(String(r.headers['content-security-policy']), /default-src 'none'/, path);
      assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body), path);
    }
    assert.equal((await raw(o.http.url, '/livez')).body, 'ok\n');
    assert.equal((await raw(o.http.url, '/nope')).body, 'not found\n');
    assert.ok((await raw(o.http.url, '/assets/uplot.js')).body.length > 20_000, 'uPlot is served whole');
  });

  it('HEAD is the GET without its body; other methods on a GET route are 404', async () => {
    const head = await raw(o.http.url, '/metrics', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.ok(Number(head.headers['content-length']) > 100, 'the length of the body a GET gets');
    assert.equal((await raw(o.http.url, '/livez', { method: 'POST' })).status, 404);
    assert.equal((await raw(o.http.url, '/actions/pause')).status, 404, 'an action is a POST');
  });

  it('refuses an action in order: unknown 404, cross-origin 403, a large or chunked body 413, no token 401', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const unknown = await raw(o.http.url, '/actions/reboot', { method: 'POST', headers: auth });
    assert.equal(unknown.status, 404);
    assert.deepEqual(JSON.parse(unknown.body), { error: 'unknown action reboot' });
    const site = await raw(o.http.url, '/actions/pause', { method: 'POST', headers: { ...auth, 'sec-fetch-site': 'cross-site' } });
    assert.equal(site.status, 403);
    assert.match(site.body, /Sec-Fetch-Site: cross-site/);
    assert.equal((await raw(o.http.url, '/actions/pause', { method: 'POST', headers: { ...auth, origin: 'http://evil.example' } })).status, 403);
    const large = await raw(o.http.url, '/actions/pause', { method: 'POST', headers: auth, body: 'x'.repeat(5000) });
    assert.equal(large.status, 413);
    assert.equal((await raw(o.http.url, '/actions/pause', { method: 'POST', headers: auth, body: 'token=x', chunked: true })).status, 413);
    const wrong = await raw(o.http.url, '/actions/pause', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=not-the-token',
    });
    assert.equal(wrong.status, 401);
    assert.equal(o.agent.sender.paused, false, 'nothing refused paused forwarding');
  });

  it('a form post with the token acts and goes back to the page (303); a bearer gets JSON', async () => {
    const host = new URL(o.http.url).host;
    const form = await raw(o.http.url, '/actions/pause', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: `http://${host}`, 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ token }).toString(),
    });
    assert.equal(form.status, 303);
    assert.equal(form.headers.location, `/?token=${encodeURIComponent(token)}`);
    assert.equal(o.agent.sender.paused, true);
    const resumed = await raw(o.http.url, '/actions/resume', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(resumed.status, 200);
    assert.deepEqual(JSON.parse(resumed.body), { ok: true, action: 'resume' });
    assert.equal(o.agent.sender.paused, false);
  });

  it('the tap needs the token and a stream, and ends at max_bytes with a line that says so', async () => {
    assert.equal((await raw(o.http.url, '/api/tap?stream=gen')).status, 401);
    assert.equal((await raw(o.http.url, '/api/tap', { headers: { authorization: `Bearer ${token}` } })).status, 400);
    const tap = await raw(o.http.url, '/api/tap?stream=gen&max_bytes=2000', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(tap.status, 200);
    assert.equal(tap.headers['content-type'], 'application/x-ndjson; charset=utf-8');
    const lines = tap.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines[0], { tap: 'gen', maxBytes: 2000 });
    const last = lines.at(-1)!;
    assert.equal(last.end, 'max_bytes');
    const records = lines.slice(1, -1);
    assert.ok(records.length > 0, 'records came through');
    assert.equal(
      last.bytes,
      records.reduce((n, r) => n + Buffer.byteLength(`${JSON.stringify(r)}\n`), 0),
      'the bytes sent are the record lines',
    );
    assert.ok((last.bytes as number) <= 2000);
    assert.equal(o.agent.telemetry.tap.listening, 0, 'the tap let go of the stream');
  });
});
