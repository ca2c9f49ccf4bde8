/**
 * SIGKILL between receipt and commit: the gateway side runs in a child process (this file, started with
 * MQTT_SOURCE_WORKER set) with a real queue; the test kills it while messages are received but not committed,
 * publishes more while it is down, and checks that every message ends up in the queue, none lost.
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
import Database from 'better-sqlite3';
import { testQueueOptions } from '../helpers/queue-options.ts';

/** The ids of every record committed in the queue file, read straight from its chunks (the writer is dead). */
function committedIdsInFile(dir: string): number[] {
  const db = new Database(join(dir, 'q.db'));
  try {
    const rows = db.prepare('SELECT payload FROM chunks').all() as { payload: Buffer }[];
    return rows.flatMap((row) => decodeRecords(row.payload, { text: 'replace' }).map((r) => r.id as number));
  } finally {
    db.close();
  }
}

const TOPIC = 'site/crash';
const COMMIT_INTERVAL_MS = 250; // wide enough that a kill lands between receipt and commit

function openQueue(dir: string): Queue {
  return Queue.open(
    testQueueOptions(join(dir, 'q.db'), {
      commitIntervalMs: COMMIT_INTERVAL_MS,
      maxBytes: 1 << 26,
      maxAgeMs: 86_400_000,
      batchMaxRecords: 1000,
      codec: { compression: 'none', level: undefined },
    }),
  );
}

type WorkerMessage = { started: true } | { received: number[] } | { committed: number[] } | { stopped: true };

/** The gateway side: the mqtt source emitting into a real queue, reporting receipts and commits over IPC. */
async function worker(): Promise<void> {
  const queue = openQueue(process.env.QUEUE_DIR!);
  const config = mqttSource.options.parse({ url: process.env.BROKER_URL!, client_id: 'crash-test', topics: [{ filter: TOPIC, qos: 1 }] });
  const source = (await mqttSource.create(
    { ...config, type: 'mqtt', name: 'crash', stream: 'crash', interval: 1000, on_start_error: 'fail' },
    driverEnv({ log: silentLogger, baseDir: '.' }),
  )) as ServiceSource;
  const abort = new AbortController();
  const send = (m: WorkerMessage) => process.send!(m);
  await source.start({
    name: 'crash',
    log: silentLogger,
    cursor: undefined,
    signal: abort.signal,
    counters: { add() {} },
    problems: problemReporter(() => ({ add() {} }), silentLogger),
    emit: (records) => {
      const ids = records.map((r) => r.id as number);
      send({ received: ids });
      const committed = queue.enqueue('crash', records);
      return committed.then(() => void send({ committed: ids }));
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
  committed = 0;
  readonly committedIds = new Set<number>();
  private waiters: { test: () => boolean; resolve: () => void }[] = [];
  private readonly exited: Promise<void>;

  constructor(brokerUrl: string, queueDir: string) {
    this.child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, MQTT_SOURCE_WORKER: '1', BROKER_URL: brokerUrl, QUEUE_DIR: queueDir },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.on('message', (m: WorkerMessage) => {
      if ('received' in m) this.received += m.received.length;
      if ('committed' in m) {
        this.committed += m.committed.length;
        for (const id of m.committed) this.committedIds.add(id);
      }
      if ('started' in m) this.started = true;
      if ('stopped' in m) this.stopped = true;
      this.waiters = this.waiters.filter((w) => (w.test() ? (w.resolve(), false) : true));
    });
  }

  started = false;
  stopped = false;

  waitFor(test: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (received ${this.received}, committed ${this.committed})`)),
        timeoutMs,
      );
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

if (process.env.MQTT_SOURCE_WORKER) {
  await worker();
} else {
  describe('mqtt source: SIGKILL between receipt and commit', () => {
    it('every published message ends up in the queue; only committed-but-unacknowledged ones can repeat', async () => {
      const broker = await startMosquitto({ persistence: true });
      const dir = mkdtempSync(join(tmpdir(), 'edge-mqtt-crash-'));
      // One long-lived publisher: the site's device, unaware of the gateway's crashes.
      const publisher = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', TOPIC, '-q', '1', '-l'], {
        stdio: ['pipe', 'ignore', 'inherit'],
      });
      let next = 0;
      const publish = (n: number) => {
        const lines = Array.from({ length: n }, () => `{"id":${next++}}\n`).join('');
        publisher.stdin!.write(lines);
      };
      let gateway: Gateway | undefined;
      let killedWithUncommitted = 0;
      const committedByKilled = new Set<number>();
      try {
        for (let round = 0; round < 3; round++) {
          gateway = new Gateway(broker.url, dir);
          await gateway.waitFor(() => gateway!.started, 'the source to start');
          publish(150);
          await gateway.waitFor(() => gateway!.committed > 0, 'a first commit');
          publish(150);
          // The kill lands while the child holds messages it received but has not committed.
          await gateway.waitFor(() => gateway!.received > gateway!.committed, 'messages received and not yet committed');
          killedWithUncommitted += gateway.received - gateway.committed;
          await gateway.kill();
          for (const id of gateway.committedIds) committedByKilled.add(id);
          // The child's reports of its commits travel over IPC and a SIGKILL can cut the last ones off: the
          // queue file itself says what the killed gateway committed.
          for (const id of committedIdsInFile(dir)) committedByKilled.add(id);
          publish(100); // while the gateway is down: the broker queues them for its session
        }
        gateway = new Gateway(broker.url, dir);
        await gateway.waitFor(() => gateway!.started, 'the source to start');
        const last = next - 1;
        // One publisher, one subscriber, QoS 1: the broker delivers in order, redeliveries first, so once the
        // last message is committed every earlier one has come (or is missing for good).
        await gateway.waitFor(() => gateway!.committedIds.has(last), `message ${last} to be committed`);
        await gateway.stop();
        gateway = undefined;

        const queue = openQueue(dir);
        const records: AgentRecord[] = [];
        const busy = new Set<string>();
        for (let b = queue.nextBatch(busy); b; b = queue.nextBatch(busy)) {
          busy.add(b.key);
          records.push(...decodeRecords(decompress(b.body, b.compression, 1 << 26)));
        }
        queue.close();
        const ids = records.map((r) => r.id as number);
        const distinct = new Set(ids);
        const missing = Array.from({ length: next }, (_, i) => i).filter((i) => !distinct.has(i));
        const duplicates = ids.length - distinct.size;
        console.log(
          `# ${next} published, ${ids.length} queued, ${duplicates} duplicates (of ${committedByKilled.size} committed by killed gateways), ${killedWithUncommitted} messages uncommitted at the kills`,
        );
        assert.deepEqual(missing, [], 'no published message is lost');
        assert.ok(killedWithUncommitted > 0, 'the kills did land between receipt and commit');
        // A duplicate is a message committed by a gateway that was killed before the broker had read its PUBACK
        // (a PUBACK still unread by the broker is discarded with the connection the kill resets).
        const counted = new Map<number, number>();
        for (const id of ids) counted.set(id, (counted.get(id) ?? 0) + 1);
        const repeated = [...counted].filter(([, n]) => n > 1).map(([id]) => id);
        const unexplained = repeated.filter((id) => !committedByKilled.has(id));
        assert.deepEqual(unexplained, [], 'only messages committed by a killed gateway repeat');
      } finally {
        if (gateway) await gateway.kill();
        publisher.stdin!.end();
        publisher.kill();
        await broker.stop();
        rmSync(broker.dir, { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
