/**
 * The endpoint's parts on their own: the exposition parses strictly, /readyz's rules (a held gauge means
 * "held, not stuck"; the sink grace), the history ring stays bounded, redaction, the token file's mode, and
 * the default bind (loopback) with its Host check.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { Telemetry } from '../../agent/telemetry/registry.ts';
import { exposition } from '../../agent/observe/exposition.ts';
import { HELD_GAUGE, HELD_HELP, readiness, SinkWatch } from '../../agent/observe/readiness.ts';
import { History } from '../../agent/observe/history.ts';
import { configuredSecrets, REDACTED, redactValue } from '../../agent/observe/redact.ts';
import { ensureToken, tokenPath } from '../../agent/observe/token.ts';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { startObservedAgent } from '../helpers/observe.ts';
import { startSilentBroker } from '../helpers/fake-silent-broker.ts';
import { request } from 'node:http';

describe('exposition', () => {
  it('is valid Prometheus text with escaped labels, cumulative buckets and zero for unlabelled counters', () => {
    const t = new Telemetry();
    t.counter('edge_x_total', 'help with \\ and\nnewline', ['stream']).inc({ stream: 'a"b\\c\nd' }, 3);
    t.counter('edge_untouched_total', 'never counted');
    t.gauge('edge_g', 'a gauge').set(undefined, 1.5);
    const h = t.histogram('edge_h_seconds', 'latency', [], [0.1, 1]);
    for (const v of [0.05, 0.5, 5]) h.observe(undefined, v);
    const parsed = parsePrometheus(exposition(t.collect()));
    assert.equal(sampleValue(parsed, 'edge_x_total', { stream: 'a"b\\c\nd' }), 3);
    assert.equal(sampleValue(parsed, 'edge_untouched_total'), 0);
    assert.equal(sampleValue(parsed, 'edge_g'), 1.5);
    assert.equal(sampleValue(parsed, 'edge_h_seconds', { le: '0.1' }, 'edge_h_seconds_bucket'), 1);
    assert.equal(sampleValue(parsed, 'edge_h_seconds', { le: '1' }, 'edge_h_seconds_bucket'), 2);
    assert.equal(sampleValue(parsed, 'edge_h_seconds', { le: '+Inf' }, 'edge_h_seconds_bucket'), 3);
    assert.equal(sampleValue(parsed, 'edge_h_seconds', {}, 'edge_h_seconds_count'), 3);
  });

  it('the strict parser refuses what is not the format', () => {
    assert.throws(() => parsePrometheus('edge_x 1\n'), /bad sample|under metric/);
    assert.throws(() => parsePrometheus('# HELP a b\n# TYPE a counter\na{l="x} 1\n'), /bad/);
    assert.throws(() => parsePrometheus('# HELP a b\n# TYPE a counter\na 1\na 2\n'), /series twice/);
  });
});

describe('readiness', () => {
  const settings = { sinkGraceMs: 1000, maxOldestAgeMs: 5000 };
  const withAge = (seconds: number) => {
    const t = new Telemetry();
    t.gauge('edge_queue_oldest_record_age_seconds', 'age', ['stream']).set({ stream: 's' }, seconds);
    return t;
  };

  it('an old backlog is red unless forwarding is held on purpose (edge_forwarding_held{reason} = 1)', () => {
    const t = withAge(60);
    const sink = new SinkWatch(() => true);
    assert.equal(readiness(t, sink, settings).ready, false);
    const held = t.gauge(HELD_GAUGE, HELD_HELP, ['reason']);
    held.set({ reason: 'send_window' }, 1);
    const r = readiness(t, sink, settings);
    assert.equal(r.ready, true, 'held, not stuck');
    assert.deepEqual(r.backlog.held, ['send_window']);
    held.set({ reason: 'send_window' }, 0);
    assert.equal(readiness(t, sink, settings).ready, false, 'the window opened again and nothing leaves: stuck');
  });

  it('a disconnected sink is green within the grace, red after it', () => {
    const t = withAge(0);
    const start = Date.now();
    const sink = new SinkWatch(() => false, start);
    assert.equal(readiness(t, sink, settings, start + 500).ready, true);
    const late = readiness(t, sink, settings, start + 1500);
    assert.equal(late.ready, false);
    assert.equal(late.sink.ok, false);
  });
});

it('the history ring keeps the last hour and no more', () => {
  const h = new History(10_000);
  for (let i = 0; i < 1000; i++) h.add({ time: i * 10_000, queueRecords: i, queueBytes: 0, recordsIn: i * 100, recordsOut: i * 50, oldestAge: 0 });
  const s = h.series();
  assert.equal(s.time.length, 361);
  assert.equal(s.queueRecords.at(-1), 999);
  assert.equal(s.inRate.at(-1), 10);
  assert.equal(s.outRate.at(-1), 5);
});

it('redaction: secret-named fields, configured secret values and URL passwords', () => {
  const secrets = configuredSecrets({ sink: { url: 'mqtt://gw:Hunter2Pw@h:1883', token: 'tok-ABCDEFG' }, sources: [{ password_env: 'NOPE_UNSET' }] }, '/');
  assert.ok(secrets.includes('Hunter2Pw') && secrets.includes('tok-ABCDEFG'));
  const out = JSON.stringify(
    redactValue({ password: 'p', nested: { api_key: 'k', text: 'pw Hunter2Pw and tok-ABCDEFG', url: 'amqp://u:zzzz@x' }, n: 1 }, secrets),
  );
  for (const s of ['Hunter2Pw', 'tok-ABCDEFG', 'zzzz', '"p"', '"k"']) assert.ok(!out.includes(s), `${s} in ${out}`);
  assert.ok(out.includes(REDACTED) && out.includes('"n":1'));
});

it('the token file is 0600 and stays the same across starts', async () => {
  const ws = await workspace();
  try {
    const token = ensureToken(ws.dir);
    assert.equal(statSync(tokenPath(ws.dir)).mode & 0o777, 0o600);
    assert.equal(ensureToken(ws.dir), token);
    assert.ok(token.length >= 40);
  } finally {
    ws.cleanup();
  }
});

it('off by default; on, it binds loopback by default and refuses a Host that is not loopback', async () => {
  const ws = await workspace();
  const silent = await startSilentBroker();
  try {
    const plain = writeConfig(ws.dir, agentYaml(silent.url, { sources: '  - { type: synthetic, name: gen, rate: 1 }' }));
    assert.equal(plain.config.http.enabled, false);
    assert.equal(plain.config.http.listen, '127.0.0.1:9464', 'the default address is loopback');
    // The default address with a free port (the default port may be taken on a test machine).
    const on = writeConfig(
      ws.dir,
      agentYaml(silent.url, { sources: '  - { type: synthetic, name: gen, rate: 1 }', extra: 'http: { enabled: true, listen: "127.0.0.1:0" }\n' }),
    );
    const o = await startObservedAgent(on);
    try {
      assert.match(o.http.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const port = Number(new URL(o.http.url).port);
      const status = await new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path: '/metrics', headers: { host: `rebound.example:${port}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
      assert.equal(status, 421, 'a DNS-rebound name is refused');
      assert.equal((await o.get('/livez')).status, 200);
    } finally {
      await o.stop();
    }
  } finally {
    await silent.close();
    ws.cleanup();
  }
});
