import { describe } from 'node:test';
import { mqttSink } from '../../drivers/sinks/mqtt/index.ts';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { sinkContract } from '../contract/sink-contract.ts';

describe('mqtt sink (real Mosquitto)', () => {
  for (const protocol_version of [5, 4] as const) {
    describe(`MQTT ${protocol_version === 5 ? '5' : '3.1.1'}`, () => {
      sinkContract(mqttSink, async () => {
        const broker = await startMosquitto({ persistence: true });
        return {
          options: { url: broker.url, protocol_version, reconnect: { initial_delay: '20ms', max_delay: '200ms' } },
          stop: () => broker.stop(),
          restart: () => broker.restart(),
          close: () => broker.stop(),
        };
      });
    });
  }
});
