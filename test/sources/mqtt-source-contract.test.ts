import { after, describe } from 'node:test';
import mqtt from 'mqtt';
import { rmSync } from 'node:fs';
import { mqttSource } from '../../drivers/sources/mqtt/index.ts';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { sourceContract } from '../contract/source-contract.ts';

// A real Mosquitto and a device publishing numbered readings with QoS 1 every few milliseconds, for the whole
// suite. The source's persistent session keeps what is published while the contract has it stopped, so the
// numbers it commits continue across its restarts: no gap, no repeat.
const broker = await startMosquitto();
const device = await mqtt.connectAsync(broker.url, { clientId: 'contract-device', protocolVersion: 5 });
let n = 0;
const publishing = setInterval(() => {
  device.publish('site/contract/reading', JSON.stringify({ n: ++n, value: 20 + (n % 7) }), { qos: 1 });
}, 5);

after(async () => {
  clearInterval(publishing);
  await device.endAsync();
  await broker.stop();
  rmSync(broker.dir, { recursive: true, force: true });
});

describe('mqtt source', () => {
  sourceContract(mqttSource, {
    options: { url: broker.url, topics: [{ filter: 'site/contract/#', qos: 1 }], payload: 'json' },
    identity: (record) => record.n as number,
  });
});
