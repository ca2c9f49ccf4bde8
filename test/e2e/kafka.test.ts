import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Consumer, murmur2 } from '@platformatic/kafka';
import { pino } from 'pino';
import { kafkaUnavailable, startKafka, type KafkaBroker } from '../../scripts/lib/kafka.ts';
import { startAgent } from '../../agent/runtime/agent.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';

// Scale with EDGE_KAFKA_E2E_RECORDS (default modest: the file runs in ~40 s alone on 2 cores).
const RECORDS = Number(process.env.EDGE_KAFKA_E2E_RECORDS ?? 8_000);
const PARTITIONS = 4;

const unavailable = kafkaUnavailable();
if (unavailable) console.log(`# SKIP kafka end-to-end tests: ${unavailable}`);

// One real broker for the whole file (a start costs several seconds and ~300 MB).
let broker: KafkaBroker;
before(async () => {
  if (!unavailable) broker = await startKafka({ partitions: PARTITIONS });
});
after(async () => broker?.close());

/** Agent + receiver over Kafka; each test uses its own topic and group so they do not meet. */
function kafkaYaml(name: string, streams: string[], perStream: number, rate: number, state = 'receiver.db'): string {
  const kafka = `
    type: kafka
    brokers: [${broker.bootstrap}]
    topic: ${name}-topic
    group: ${name}-group
    session_timeout: 6s
    connect_timeout: 5s
    request_timeout: 5s
    reconnect: { initial_delay: 50ms, max_delay: 500ms }`;
  return agentYaml(
    { sink: kafka },
    {
      device: `gw-${name}`,
      sources: streams.map((s) => `  - { type: synthetic, name: ${s}, rate: ${rate}, batch: 200, count: ${perStream} }`).join('\n'),
      state,
      writeTimeout: '10s',
    },
  );
}

/** A logger that keeps the partitions of its receiver's latest group assignment. */
function assignmentWatcher(): { log: typeof silentLogger; partitions: () => string[] | undefined } {
  let latest: string[] | undefined;
  const stream = new Writable({
    write(chunk, _encoding, done) {
      const line = JSON.parse(String(chunk)) as { msg?: string; partitions?: string[] };
      if (process.env.EDGE_KAFKA_E2E_DEBUG) console.log('#', String(chunk).slice(0, 300));
      if (line.msg === 'kafka group assignment') latest = line.partitions;
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream) as unknown as typeof silentLogger, partitions: () => latest };
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every (stream, n) of the run, once each, across the given outputs. */
function identities(outputs: CollectingOutput[]): string[] {
  return outputs.flatMap((o) => o.records.map((r) => `${r.header.stream}:${r.record.n as number}`));
}

function expected(streams: string[], perStream: number): string[] {
  return streams.flatMap((s) => Array.from({ length: perStream }, (_, i) => `${s}:${i + 1}`)).sort();
}

test('synthetic source → agent → Kafka (SIGKILLed and restarted mid-stream) → receiver: every record, duplicates removed', { skip: unavailable }, async () => {
  const ws = await workspace();
  const loaded = writeConfig(ws.dir, kafkaYaml('kill', ['gen'], RECORDS, 2_000));
  const output = new CollectingOutput();
  const receiver = await startReceiver(x25519, loaded, silentLogger, { output });
  const agent = await startAgent(loaded, silentLogger);
  try {
    await output.waitFor(() => output.records.length >= RECORDS / 5, 'a fifth of the stream');
    await broker.kill();
    assert.ok(output.records.length < RECORDS, 'the broker died mid-stream');
    await broker.restart();
    await output.waitFor(() => output.records.length >= RECORDS, 'every record', 120_000);
    await agent.sender.idle();
    await agent.queue.flush();
    const got = identities([output]);
    assert.equal(new Set(got).size, got.length, 'no record twice in the output (the receiver deduplicates redelivered batches)');
    assert.deepEqual([...got].sort(), expected(['gen'], RECORDS));
    assert.equal(agent.status().queue.records, 0, 'the queue drained');
    assert.equal(agent.status().sender.rejected, 0, 'nothing set aside');
  } finally {
    await agent.stop();
    await receiver.close();
    ws.cleanup();
  }
});

/**
 * Stream names whose keys (`<device>/<stream>`) land on every partition, by the producer's own partitioner
 * (murmur2 & 0x7fffffff, as the Java client hashes): whichever partitions the group gives each receiver, both get work.
 */
function streamsCoveringPartitions(device: string): string[] {
  const byPartition = new Map<number, string>();
  for (let i = 0; byPartition.size < PARTITIONS; i++) {
    const stream = `s${i}`;
    const partition = (murmur2(Buffer.from(`${device}/${stream}`)) & 0x7fffffff) % PARTITIONS;
    if (!byPartition.has(partition)) byPartition.set(partition, stream);
  }
  return [...byPartition.values()];
}

test('two receivers in one consumer group share the partitions: each handles part, together every record', { skip: unavailable }, async () => {
  const ws = await workspace();
  const streams = streamsCoveringPartitions('gw-share');
  const perStream = Math.ceil(RECORDS / streams.length);
  const outputs = [new CollectingOutput(), new CollectingOutput()];
  const watchers = [assignmentWatcher(), assignmentWatcher()];
  const receivers: Awaited<ReturnType<typeof startReceiver>>[] = [];
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  const all = () => new Set(identities(outputs)).size;
  try {
    for (const [i, name] of ['a', 'b'].entries()) {
      const config = writeConfig(ws.dir, kafkaYaml('share', streams, perStream, 0, `receiver-${name}.db`), `${name}.yaml`);
      receivers.push(await startReceiver(x25519, config, watchers[i]!.log, { output: outputs[i] }));
    }
    // The group has rebalanced once each receiver holds some of the partitions and together all of them.
    await waitUntil(() => {
      const held = watchers.map((w) => w.partitions() ?? []);
      return held.every((p) => p.length > 0) && new Set(held.flat()).size === PARTITIONS;
    }, 'both receivers assigned partitions');
    agent = await startAgent(writeConfig(ws.dir, kafkaYaml('share', streams, perStream, 4_000)), silentLogger);
    await waitUntil(() => all() >= perStream * streams.length, 'every record at one receiver or the other', 120_000);
    const got = identities(outputs);
    assert.deepEqual([...new Set(got)].sort(), expected(streams, perStream));
    const share = outputs.map((o) => new Set(o.records.map((r) => r.header.stream)));
    assert.ok(share[0]!.size > 0 && share[1]!.size > 0, `both receivers handled series (a: ${[...share[0]!]}, b: ${[...share[1]!]})`);
    for (const o of outputs) {
      const mine = identities([o]);
      assert.equal(new Set(mine).size, mine.length, 'within one receiver, nothing twice');
    }
  } finally {
    await agent?.stop();
    for (const r of receivers) await r.close();
    ws.cleanup();
  }
});

test('receiver.kafka_output: decrypted records as JSON on a Kafka topic, each with its identity, every record there', { skip: unavailable }, async () => {
  const ws = await workspace();
  const total = Math.min(RECORDS, 4_000);
  const yaml = kafkaYaml('out', ['gen'], total, 0).replace(
    '  state: receiver.db\n',
    `  state: receiver.db\n  kafka_output:\n    brokers: [${broker.bootstrap}]\n    topic: out-records\n`,
  );
  const loaded = writeConfig(ws.dir, yaml);
  const receiver = await startReceiver(x25519, loaded, silentLogger);
  const agent = await startAgent(loaded, silentLogger);
  const reader = new Consumer({
    clientId: 'out-reader',
    groupId: 'out-reader',
    bootstrapBrokers: [broker.bootstrap],
    autocommit: true,
    maxWaitTime: 200,
    autocreateTopics: true,
  });
  const byId = new Map<string, string>();
  let copies = 0;
  try {
    const stream = await reader.consume({ topics: ['out-records'], mode: 'earliest' });
    stream.on('data', (m: { value: Buffer; headers: Map<Buffer, Buffer> }) => {
      const value = m.value.toString();
      const header = [...m.headers].find(([k]) => k.toString() === 'edge-id')?.[1]?.toString();
      const parsed = JSON.parse(value) as { id: string };
      assert.equal(header, parsed.id, 'the edge-id header is the record identity in the value');
      if (byId.has(parsed.id)) assert.equal(byId.get(parsed.id), value, 'a repeated identity is the same record');
      byId.set(parsed.id, value);
      copies++;
    });
    await waitUntil(() => byId.size >= total, 'every record on the output topic', 120_000);
    const records = [...byId.values()].map(
      (v) => JSON.parse(v) as { id: string; device: string; stream: string; epoch: string; seq: number; record: { n: number } },
    );
    assert.deepEqual(records.map((r) => `${r.stream}:${r.record.n}`).sort(), expected(['gen'], total));
    for (const r of records) {
      assert.equal(r.device, 'gw-out');
      assert.match(r.epoch, /^[0-9a-f]{16}$/);
      assert.ok(r.id.startsWith(`gw-out/gen/${r.epoch}/${r.seq}/`), r.id);
    }
    assert.ok(copies >= total);
    await stream.close();
  } finally {
    await reader.close(true);
    await agent.stop();
    await receiver.close();
    ws.cleanup();
  }
});
