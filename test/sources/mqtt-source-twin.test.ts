import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { mqttSource } from '../../drivers/sources/mqtt/index.ts';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { silentLogger } from '../../agent/log.ts';
import type { ProblemReporter, SourceContext } from '../../agent/sdk/index.ts';
import type { MqttSource } from '../../drivers/sources/mqtt/source.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';

// The same source config on two gateways sharing a broker: two subscribers with one client id take the session
// from each other in a loop. Against a real Mosquitto (MQTT 5), the problem is named, with the client id.

interface Report {
  kind: string;
  message: string;
  fields: Record<string, unknown>;
}

let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto();
});
after(async () => {
  await broker.stop();
  rmSync(broker.dir, { recursive: true, force: true });
});

async function start(reports: Report[], onReport: () => void): Promise<{ source: MqttSource; abort: AbortController }> {
  const config = mqttSource.options.parse({
    url: broker.url,
    client_id: 'site-reader',
    protocol_version: 5,
    reconnect_delay: '50ms',
    topics: [{ filter: 'twin/#', qos: 1 }],
  });
  const common = { type: 'mqtt', name: 'site', stream: 'site', interval: 10_000, on_start_error: 'retry' as const };
  const source = (await mqttSource.create({ ...config, ...common }, driverEnv({ log: silentLogger, baseDir: process.cwd() }))) as MqttSource;
  const problems: ProblemReporter = {
    report: (kind, message, fields = {}) => {
      reports.push({ kind, message, fields });
      onReport();
    },
  };
  const abort = new AbortController();
  const ctx: SourceContext = {
    name: 'site',
    log: silentLogger,
    cursor: undefined,
    signal: abort.signal,
    counters: { add: () => {} },
    problems,
    emit: async () => {},
    fail: (err) => assert.fail(`source failed: ${String(err)}`),
  };
  await source.start(ctx);
  return { source, abort };
}

it('two mqtt sources with one client id: "another client connected with client id site-reader", not just resets', { timeout: 60_000 }, async () => {
  const reports: Report[] = [];
  const { promise: reported, resolve } = Promise.withResolvers<void>();
  const first = await start(reports, resolve);
  // Another gateway's source with the same config: the broker hands it the session and drops the first.
  const second = await start(reports, resolve);
  try {
    await reported;
    const report = reports.find((r) => r.kind === 'client_id_taken_over');
    assert.ok(report, JSON.stringify(reports));
    assert.match(report.message, /another client connected with client id site-reader/);
    assert.match(report.message, /source site/);
    assert.equal(report.fields.client_id, 'site-reader');
  } finally {
    first.abort.abort();
    second.abort.abort();
    await first.source.stop();
    await second.source.stop();
  }
});
