/**
 * /metrics for a scripted run, parsed with a strict Prometheus text parser (test/helpers/prometheus.ts):
 * 10,000 messages published to the devices' broker, 37 of them larger than batch.max_bytes (the size policy
 * drops them: reason too_large), the sink's broker stopped and started twice (2 reconnects). Every counter
 * must equal what the script did, exactly: a scripted run gives the same numbers every time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { startObservedAgent } from '../helpers/observe.ts';
import { type ParsedMetric, parsePrometheus, sampleValue } from '../helpers/prometheus.ts';

const TOTAL = 10_000;
const OVERSIZE = 37;
const OVERSIZE_EVERY = 270; // 37 × 270 = 9,990 < 10,000

test('a scripted run: records in, out, dropped by reason, reconnects, latency count — every counter exact; bytes on the wire', async () => {
  const ws = await workspace();
  const devices = await startMosquitto();
  const centre = await startMosquitto({ persistence: true });
  const loaded = writeConfig(
    ws.dir,
    agentYaml(centre.url, {
      sources: `  - { type: mqtt, name: dev, url: "${devices.url}", topics: [{ filter: "t/#", qos: 1 }], payload: json, batch_max: 500 }`,
      extra: 'batch: { max_bytes: 4KiB }\nhttp: { enabled: true, listen: "127.0.0.1:0" }\n',
    }),
  );
  const output = new CollectingOutput();
  const receiver = await startReceiver(x25519, loaded, silentLogger, { output });
  const observed = await startObservedAgent(loaded);
  const publisher = await mqtt.connectAsync(devices.url, { protocolVersion: 5 });
  let metrics = new Map<string, ParsedMetric>();
  const scrape = async () => (metrics = parsePrometheus(await observed.text('/metrics')));
  const value = (name: string, labels: Record<string, string> = {}, sample = name) => sampleValue(metrics, name, labels, sample) ?? 0;
  const scrapeUntil = async (cond: () => boolean, what: string) => {
    const deadline = Date.now() + 60_000;
    for (await scrape(); !cond(); await scrape()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const reconnects = () => value('edge_sink_events_total', { sink: 'mqtt', event: 'reconnects' });
  try {
    const big = 'x'.repeat(6000);
    const published: Promise<unknown>[] = [];
    for (let n = 0; n < TOTAL; n++) {
      const oversize = n % OVERSIZE_EVERY === 0 && n / OVERSIZE_EVERY < OVERSIZE;
      published.push(publisher.publishAsync(`t/${n % 50}`, JSON.stringify({ n, v: Math.random() * 100, ...(oversize ? { big } : {}) }), { qos: 1 }));
      if (n === TOTAL / 2) await Promise.all(published.splice(0));
    }
    await Promise.all(published);
    for (let turn = 1; turn <= 2; turn++) {
      await centre.stop();
      await centre.restart();
      // Each look scrapes the endpoint: the number is read where an operator reads it.
      await scrapeUntil(() => reconnects() >= turn, `reconnect ${turn}`);
    }
    await output.waitFor(() => output.records.length >= TOTAL - OVERSIZE, 'every record that fits', 120_000);
    await observed.agent.sender.idle();
    await observed.agent.queue.flush();
    await scrape();
    const expected: [string, Record<string, string>, number][] = [
      ['edge_source_events_total', { source: 'dev', event: 'records' }, TOTAL],
      ['edge_queue_committed_records_total', {}, TOTAL - OVERSIZE],
      ['edge_records_in_total', { stream: 'dev' }, TOTAL],
      ['edge_records_out_total', { stream: 'dev' }, TOTAL - OVERSIZE],
      ['edge_queue_dropped_records_total', { stream: 'dev', reason: 'too_large' }, OVERSIZE],
      ['edge_sender_records_sent_total', {}, TOTAL - OVERSIZE],
      ['edge_sink_events_total', { sink: 'mqtt', event: 'reconnects' }, 2],
      ['edge_queue_records', { stream: 'dev' }, 0],
      ['edge_queue_oldest_record_age_seconds', { stream: 'dev' }, 0],
      ['edge_sink_connected', { sink: 'mqtt' }, 1],
      ['edge_source_state', { source: 'dev', state: 'running' }, 1],
      ['edge_build_info', {}, 1],
    ];
    for (const [name, labels, want] of expected) assert.equal(value(name, labels), want, `${name}${JSON.stringify(labels)}`);
    const dropped = metrics.get('edge_queue_dropped_records_total')!.samples;
    assert.deepEqual(
      dropped.map((s) => [s.labels.reason, s.value]),
      [['too_large', OVERSIZE]],
      'no drop of any other reason',
    );
    const batches = value('edge_sender_batches_sent_total');
    assert.ok(batches > 0);
    assert.equal(value('edge_delivery_latency_seconds', {}, 'edge_delivery_latency_seconds_count'), batches, 'one latency observation per delivered batch');
    assert.equal(metrics.get('edge_delivery_latency_seconds')?.type, 'histogram');
    // Bytes on the wire without a governor: at least the envelopes sent went out, and acknowledgements came in.
    const wireOut = value('edge_link_bytes_total', { direction: 'out', connection: 'sink' });
    assert.ok(wireOut > value('edge_sender_bytes_sent_total'), `${wireOut} bytes out on the wire, more than the envelopes`);
    assert.ok(value('edge_link_bytes_total', { direction: 'in', connection: 'sink' }) > 0, 'bytes in on the wire');
    assert.equal(output.records.length, TOTAL - OVERSIZE, 'the centre has each record that fits, once');
  } finally {
    await publisher.endAsync();
    await observed.stop();
    await receiver.close();
    await centre.stop();
    await devices.stop();
    ws.cleanup();
  }
});
