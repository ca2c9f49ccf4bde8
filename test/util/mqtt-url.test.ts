import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import url from 'node:url';
import mqtt, { type IClientOptions } from 'mqtt';
import { mqttConnectOptions } from '../../agent/util/mqtt-url.ts';

/** The options a client ends up with (manualConnect: it never connects, so there is nothing to end). */
function optionsOf(client: mqtt.MqttClient): Record<string, unknown> {
  const { host, port, protocol, path, username, password, clientId, hostname } = client.options as Record<string, unknown>;
  return { host, port, protocol, path, username, password, clientId, hostname };
}

const cases: [string, IClientOptions][] = [
  ['mqtt://127.0.0.1:1883', {}],
  ['mqtts://broker.example:8883', { clientId: 'gw-1', username: 'from-options' }],
  ['mqtt://broker.example', { port: 1999 }],
  ['mqtt://[::1]:1884', {}],
  ['ws://broker.example:8080/mqtt?x=1', {}],
  ['wss://user%40site:p%20ss@broker.example/mqtt', { username: 'overridden', password: 'overridden' }],
  ['mqtt://broker.example:1883?clientId=from-url', { clientId: 'from-options' }],
];

describe('mqttConnectOptions', () => {
  // In the executable MQTT.js is not under node_modules, so Node 24 prints DEP0169 for each url.parse() call
  // it makes; from the source tree it does not. Count the calls instead (the same module object MQTT.js uses).
  it('never calls the legacy url.parse(), where a URL string does (so this test can tell)', () => {
    const legacy = url.parse;
    let calls = 0;
    url.parse = ((...args: Parameters<typeof legacy>) => {
      calls++;
      return legacy(...args);
    }) as typeof legacy;
    try {
      mqtt.connect({ ...mqttConnectOptions('mqtt://127.0.0.1:1883'), manualConnect: true });
      assert.equal(calls, 0);
      mqtt.connect('mqtt://127.0.0.1:1883', { manualConnect: true });
      assert.equal(calls, 1);
    } finally {
      url.parse = legacy;
    }
  });

  for (const [brokerUrl, options] of cases) {
    it(`gives MQTT.js the options its own parse of ${brokerUrl} gives`, () => {
      // A fixed default client id: MQTT.js otherwise makes a random one for each client.
      const given = { clientId: 'default-id', ...options };
      const theirs = optionsOf(mqtt.connect(brokerUrl, { ...given, manualConnect: true }));
      const ours = optionsOf(mqtt.connect({ ...mqttConnectOptions(brokerUrl, given), manualConnect: true }));
      assert.deepEqual(ours, theirs);
    });
  }

  // Where the two differ, on purpose: MQTT.js decodes the credentials first and then splits at the LAST
  // colon, so a password holding an encoded ':' loses its start to the user name.
  it('splits URL credentials before decoding them', () => {
    const o = mqttConnectOptions('mqtts://user%40site:p%3Ass@broker.example');
    assert.equal(o.username, 'user@site');
    assert.equal(o.password, 'p:ss');
  });

  // MQTT.js's packet writer would otherwise fill a process-wide cache of 65,536 Buffers (≈7 MiB of heap) at
  // the first packet any client writes.
  it("turns off the packet writer's number cache unless a caller asks for it", async () => {
    assert.equal(mqttConnectOptions('mqtt://127.0.0.1:1883').writeCache, false);
    assert.equal(mqttConnectOptions('mqtt://127.0.0.1:1883', { writeCache: true }).writeCache, true);
    const { default: packet } = await import('mqtt-packet');
    mqtt.connect({ ...mqttConnectOptions('mqtt://127.0.0.1:1883'), manualConnect: true });
    assert.equal(packet.writeToStream.cacheNumbers, false);
  });
});
