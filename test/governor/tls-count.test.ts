import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { governorSchema } from '../../agent/config/governor-schema.ts';
import { Governor } from '../../agent/governor/governor.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { silentLogger } from '../../agent/log.ts';
import { Telemetry } from '../../agent/telemetry/registry.ts';
import { mqttSink } from '../../drivers/sinks/mqtt/index.ts';
import { CountingProxy } from '../../scripts/lib/counting-proxy.ts';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { makeCertificates } from '../helpers/certs.ts';
import { until } from './pipeline.ts';

let dir: string;
let broker: Mosquitto;
let proxy: CountingProxy;
let certs: ReturnType<typeof makeCertificates>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'governor-tls-'));
  certs = makeCertificates(dir);
  broker = await startMosquitto({ extra: [`cafile ${certs.ca}`, `certfile ${certs.serverCert}`, `keyfile ${certs.serverKey}`] });
  proxy = await CountingProxy.start(broker.port);
});
after(async () => {
  await proxy?.close();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('over TLS the agent counts the encrypted bytes (handshake, records), not the plaintext: equal to the proxy, never below', async () => {
  const telemetry = new Telemetry();
  const governor = new Governor(governorSchema.parse({})!, { dataDir: dir, telemetry, log: silentLogger });
  const options = mqttSink.options.parse({ url: `mqtts://127.0.0.1:${proxy.port}`, tls: { ca: certs.ca } });
  const sink = await mqttSink.create(options, { ...driverEnv({ log: silentLogger, baseDir: '/' }), device: 'gw-tls', wire: governor.sinkWire });
  await sink.connect();
  await until(() => sink.connected, 'connected over TLS');
  for (let seq = 1; seq <= 5; seq++) {
    const bytes = new Uint8Array(10_000).map((_, i) => (i * 7 + seq) % 251);
    // Nobody subscribes: the broker answers 0x10, which the sink reports as not delivered; the bytes went all the same.
    await sink.write({ device: 'gw-tls', stream: 's', epoch: '00', seq, count: 1, bytes }).catch(() => {});
  }
  await sink.close();
  await until(() => proxy.connections > 0 && proxy.total > 0, 'the proxy counted');
  governor.stop();
  const counter = telemetry.get('edge_link_bytes_total') as { value(l: Record<string, string>): number };
  const agent = counter.value({ direction: 'in', connection: 'sink' }) + counter.value({ direction: 'out', connection: 'sink' });
  console.log(`tls: agent ${agent} B, proxy ${proxy.total} B (payload 50,000 B)`);
  assert.ok(proxy.total > 50_000 + 1_000, 'the proxy saw the TLS handshake and records');
  assert.ok(agent >= proxy.total, `the agent counted fewer bytes (${agent}) than the proxy (${proxy.total})`);
  assert.ok(agent - proxy.total <= proxy.total * 0.01, `the agent counted ${agent - proxy.total} B more than the proxy`);
});
