/**
 * The executable's MQTT sink over TLS. The build makes MQTT.js's TLS transport (and node:tls) load at the
 * first mqtts:// connection instead of at its first connection of any kind (scripts/build/load-on-use.ts):
 * this runs the shipped executable against a real Mosquitto with a TLS listener that demands a client
 * certificate, until the sink logs that it is connected.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runUntilAgentRunning } from '../../scripts/lib/run-until-running.ts';
import { type MutualTlsBroker, startMutualTlsBroker } from '../helpers/certs.ts';
import { builtExecutable } from '../helpers/executable.ts';

let tls: MutualTlsBroker;

describe('the executable over mqtts://', { skip: process.arch === 'x64' && process.platform === 'linux' ? false : 'the host is not linux-x64' }, () => {
  before(async () => {
    tls = await startMutualTlsBroker('edge-agent-mqtts-');
  });
  after(async () => {
    await tls?.stop();
  });

  it('the MQTT sink connects with a client certificate (the TLS transport loaded on use)', async () => {
    const config = [
      'device:',
      '  id: gw-mqtts',
      'data_dir: data',
      'keys: { device_private: keys/device.key, centre_public: keys/centre.pub, generate_if_missing: true }',
      'sources:',
      '  - { type: synthetic, name: load, rate: 10 }',
      'sink:',
      '  type: mqtt',
      `  url: mqtts://127.0.0.1:${tls.broker.port}`,
      `  tls: { ca: ${tls.certs.ca}, cert: ${tls.certs.clientCert}, key: ${tls.certs.clientKey} }`,
      '',
    ].join('\n');
    writeFileSync(join(tls.dir, 'run.yaml'), config);
    const r = await runUntilAgentRunning([builtExecutable('linux-x64'), 'run', '--config', 'run.yaml'], {
      cwd: tls.dir,
      env: { ...process.env, EDGE_AGENT_NATIVE_CACHE: join(tls.dir, 'native-cache') },
      until: 'mqtt connected',
      timeoutMs: 60_000,
    });
    assert.ok(r.stopped, `the sink did not log "mqtt connected" (exit ${r.code ?? r.signal}): ${r.output.slice(-2000)}`);
    assert.match(r.output, /"msg":"mqtt connected"/);
  });
});
