/**
 * Inbound QoS 2, exactly once across SIGKILLs: a device publishes with QoS 2 to a real Mosquitto; the gateway
 * side (this file in a child process, MQTT_SOURCE_WORKER set, with a real queue whose cursor the source uses)
 * is SIGKILLed at random points several times while messages flow. Every message must be in the queue exactly
 * once: no loss (a PUBREC sent before the commit) and no repeat (a resent PUBLISH or PUBREL for a packet id
 * already committed taken for a new message).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mqttSource } from '../../drivers/sources/mqtt/index.ts';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { Queue } from '../../agent/queue/queue.ts';
import { silentLogger } from '../../agent/log.ts';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import type { AgentRecord, ServiceSource } from '../../agent/sdk/index.ts';
import { problemReporter, driverEnv } from '../../agent/hosting/driver-env.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';

const TOPIC = 'site/qos2';
const COMMIT_INTERVAL_MS = 100; // wide enough that kills land between receipt, commit, PUBREC, PUBREL and PUBCOMP

function openQueue(dir: string): Queue {
  return Queue.open(testQueueOptions(join(dir, 'q.db'), { commitIntervalMs: COMMIT_INTERVAL_MS, codec: { compression: 'none', level: undefined } }));
}

type WorkerMessage = { started: true } | { received: number } | { committed: number[] } | { counted: string } | { stopped: true };

/** The gateway side: the mqtt source emitting into a real queue, with its cursor, as the runtime does. */
async function worker(): Promise<void> {
  const queue = openQueue(process.env.QUEUE_DIR!);
  const protocol = Number(process.env.PROTOCOL) as 4 | 5;
  const qos = Number(process.env.QOS) as 1 | 2;
  const config = mqttSource.options.parse({
    url: process.env.BROKER_URL!,
    client_id: 'qos2-crash',
    protocol_version: protocol,
    topics: [{ filter: TOPIC, qos }],
    ...(qos === 1 ? { dedup: { key: 'json_field', field: 'id' } } : {}),
  });
  const source = (await mqttSource.create(
    { ...config, type: 'mqtt', name: 'qos2', stream: 'qos2', interval: 1000, on_start_error: 'fail' },
    driverEnv({ log: silentLogger, baseDir: '.' }),
  )) as ServiceSource;
  const abort = new AbortController();
  const send = (m: WorkerMessage) => process.send!(m);
  await source.start({
    name: 'qos2',
    log: silentLogger,
    cursor: queue.cursor('qos2'),
    signal: abort.signal,
    counters: { add: (name: string) => send({ counted: name }) },
    problems: problemReporter(() => ({ add() {} }), silentLogger),
    emit: (records, cursor) => {
      const ids = records.map((r) => r.id as number);
      send({ received: ids.length });
      return queue.enqueue('qos2', records, cursor === undefined ? undefined : { source: 'qos2', value: cursor }).then(() => void send({ committed: ids }));
    },
    fail: (err) => {
      console.error('source failed', err);
      process.exit(3);
    },
  });
  process.on('message', async () => {
    abort.abort();
    await source.stop();
    await queue.flush();
    queue.close();
    send({ stopped: true });
    process.disconnect();
  });
  send({ started: true });
}

class Gateway {
  readonly child: ChildProcess;
  received = 0;
  readonly committedIds = new Set<number>();
  readonly counted = new Map<string, number>();
  started = false;
  stopped = false;
  private waiters: { test: () => boolean; resolve: () => void }[] = [];
  private readonly exited: Promise<void>;

  constructor(brokerUrl: string, queueDir: string, protocol: number, qos: number) {
    this.child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, MQTT_SOURCE_WORKER: '1', BROKER_URL: brokerUrl, QUEUE_DIR: queueDir, PROTOCOL: String(protocol), QOS: String(qos) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.on('message', (m: WorkerMessage) => {
      if ('received' in m) this.received += m.received;
      if ('committed' in m) for (const id of m.committed) this.committedIds.add(id);
      if ('counted' in m) this.counted.set(m.counted, (this.counted.get(m.counted) ?? 0) + 1);
      if ('started' in m) this.started = true;
      if ('stopped' in m) this.stopped = true;
      this.waiters = this.waiters.filter((w) => (w.test() ? (w.resolve(), false) : true));
    });
  }

  waitFor(test: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (received ${this.received})`)), timeoutMs);
      this.waiters.push({ test, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    this.child.send('stop');
    await this.waitFor(() => this.stopped, 'a clean stop');
    await this.exited;
  }
}

/** Every record in the queue file, in queue order. */
function queuedIds(dir: string): number[] {
  const queue = openQueue(dir);
  const records: AgentRecord[] = [];
  const busy = new Set<string>();
  for (let b = queue.nextBatch(busy); b; b = queue.nextBatch(busy)) {
    busy.add(b.key);
    records.push(...decodeRecords(decompress(b.body, b.compression, 1 << 26)));
  }
  queue.close();
  return records.map((r) => r.id as number);
}

async function crashRun(protocol: 4 | 5, qos: 1 | 2 = 2): Promise<void> {
  const broker = await startMosquitto();
  const dir = mkdtempSync(join(tmpdir(), 'edge-mqtt-qos2-'));
  // One long-lived QoS 2 publisher: the site's device, unaware of the gateway's crashes.
  const publisher = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', TOPIC, '-q', String(qos), '-l'], {
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  let next = 0;
  const publish = (n: number) => publisher.stdin!.write(Array.from({ length: n }, () => `{"id":${next++}}\n`).join(''));
  let gateway: Gateway | undefined;
  const kills: string[] = [];
  const counted = new Map<string, number>();
  const tally = (g: Gateway) => {
    for (const [name, n] of g.counted) counted.set(name, (counted.get(name) ?? 0) + n);
  };
  try {
    // Six kills at random points while the device keeps publishing: after some messages were received (before
    // any commit of the round), or after some were committed (PUBRECs, PUBRELs and PUBCOMPs then in flight).
    for (let round = 0; round < 6; round++) {
      gateway = new Gateway(broker.url, dir, protocol, qos);
      const g = gateway;
      await g.waitFor(() => g.started, 'the source to start');
      publish(300);
      const killAfter = 1 + Math.floor(Math.random() * 250);
      if (round % 2 === 0) await g.waitFor(() => g.received >= killAfter, `${killAfter} messages received`);
      else await g.waitFor(() => g.committedIds.size >= killAfter, `${killAfter} messages committed`);
      kills.push(`${g.received}/${g.committedIds.size}`);
      await gateway.kill();
      tally(gateway);
      publish(50); // while the gateway is down: the broker keeps them for its session
    }
    gateway = new Gateway(broker.url, dir, protocol, qos);
    await gateway.waitFor(() => gateway!.started, 'the source to start');
    const last = next - 1;
    // QoS 2 from one publisher to one subscriber arrives in order, so once the last message is committed every
    // earlier one has come. Then a clean stop, which completes every handshake.
    await gateway.waitFor(() => gateway!.committedIds.has(last), `message ${last} to be committed`);
    await gateway.stop();
    tally(gateway);
    gateway = undefined;

    const ids = queuedIds(dir);
    const times = new Map<number, number>();
    for (const id of ids) times.set(id, (times.get(id) ?? 0) + 1);
    const missing = Array.from({ length: next }, (_, i) => i).filter((i) => !times.has(i));
    const repeated = [...times].filter(([, n]) => n > 1).map(([id, n]) => `${id}×${n}`);
    console.log(
      `# MQTT ${protocol === 5 ? '5' : '3.1.1'}: ${next} published with QoS ${qos}${qos === 1 ? ' (dedup by the id field)' : ''}, ${ids.length} queued; kills at received/committed ${kills.join(', ')}; counters ${JSON.stringify([...counted])}`,
    );
    assert.deepEqual(missing, [], 'no message is lost');
    assert.deepEqual(repeated, [], 'no message is queued twice');
    assert.equal(ids.length, next);
  } finally {
    if (gateway) await gateway.kill();
    publisher.stdin!.end();
    publisher.kill();
    await broker.stop();
    rmSync(broker.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env.MQTT_SOURCE_WORKER) {
  await worker();
} else {
  describe('mqtt source: exactly once across SIGKILLs (QoS 2, and QoS 1 with dedup)', () => {
    it('MQTT 5: every message published with QoS 2 is queued exactly once', () => crashRun(5));
    it('MQTT 3.1.1: every message published with QoS 2 is queued exactly once', () => crashRun(4));
    // QoS 1 repeats a message committed just before a kill; the dedup window, committed with the records,
    // drops it (the window of 1000 ids covers the broker's 1000 unacknowledged messages).
    it('MQTT 5, QoS 1 with dedup by a JSON id field: every message queued exactly once', () => crashRun(5, 1));
  });
}
