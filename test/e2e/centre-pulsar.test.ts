/**
 * The centre scaled out on Pulsar (docs/centre.md): three `edge-agent receive` processes on one Key_Shared
 * subscription of a real Pulsar standalone (scripts/pulsar/standalone.sh; skipped with the reason when it
 * cannot start), 100 simulated gateways publishing through the project's Pulsar sink, receivers SIGKILLed
 * and restarted at random: every record in PostgreSQL exactly once, and every record also on the records
 * topic (`receiver.topic_output`), read back by an analytics consumer, at least once.
 *
 * Runs in the default suite (about a minute on a loaded 2-core machine: the broker's start and 100
 * producers); EDGE_CENTRE_PULSAR=0 leaves it out. EDGE_CENTRE_BATCHES (batches per device, default 4) and
 * EDGE_CENTRE_KILLS (default 2) scale it. Skipped, with the reason, where Pulsar or PostgreSQL cannot run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { x25519 } from '../../agent/keys/x25519.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { silentLogger } from '../../agent/log.ts';
import { pulsarOptions } from '../../drivers/sinks/pulsar/options.ts';
import { PulsarWsConsumer } from '../../drivers/sinks/pulsar/ws-consumer.ts';
import { PulsarWsSink } from '../../drivers/sinks/pulsar/ws-sink.ts';
import { simulateFleet } from '../../scripts/lib/centre-sim.ts';
import { type PulsarBroker, startPulsar } from '../../scripts/lib/pulsar.ts';
import { createPostgresDatabase, PG, postgresUnavailable, type TestDatabase } from '../helpers/db.ts';
import { runCli } from '../helpers/processes.ts';

const DEVICES = 100;
const BATCHES = Number(process.env.EDGE_CENTRE_BATCHES ?? 4);
const RECORDS = 10;
const KILLS = Number(process.env.EDGE_CENTRE_KILLS ?? 2);

let broker: PulsarBroker | undefined;
let db: TestDatabase | undefined;
let skip: string | undefined = process.env.EDGE_CENTRE_PULSAR === '0' ? 'left out with EDGE_CENTRE_PULSAR=0' : await postgresUnavailable();

before(async () => {
  if (skip) return;
  try {
    broker = await startPulsar();
  } catch (err) {
    skip = `Pulsar standalone did not start: ${(err as Error).message.split('\n')[0]}`;
  }
  if (!skip) db = await createPostgresDatabase();
});
after(async () => {
  await broker?.close();
  await db?.drop();
});

test('three receivers on one Pulsar Key_Shared subscription, SIGKILLed at random: PostgreSQL exactly once, the records topic complete', {
  timeout: 300_000,
}, async (t) => {
  if (skip || !broker || !db) {
    console.log(`# skipped: ${skip}`);
    t.skip(skip);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'edge-centre-pulsar-'));
  const fleet = simulateFleet(x25519, dir, DEVICES);
  const url = broker.wsUrl;
  const configs = [0, 1, 2].map((i) => {
    const path = join(dir, `centre-${i}.yaml`);
    writeFileSync(
      path,
      `data_dir: data-${i}
log: { level: info, format: json }
receiver:
  private_key: ${fleet.centreKeyFile}
  input: { type: pulsar, url: ${url}, topic: centre-in, subscription: centre, subscription_type: Key_Shared, consumer_name: centre-${i} }
  postgres: { url: "postgres://${PG.user}@${PG.host}:${PG.port}/${db!.name}" }
  topic_output: { type: pulsar, url: ${url}, topic: centre-records }
  devices:
${fleet.devicesYaml(4)}
`,
    );
    return path;
  });
  const slots: ReturnType<typeof runCli>[] = [];
  const start = async (i: number) => {
    slots[i] = runCli(['receive', '--config', configs[i]!]);
    await slots[i]!.stderrMatches(/"msg":"receiver running"/, 120_000);
  };
  const gateways = new PulsarWsSink(pulsarOptions().parse({ url, topic: 'centre-in' }), {
    ...driverEnv({ log: silentLogger, baseDir: dir }),
    device: 'simulator',
  });
  // An analytics consumer of the records topic: every line it sees, by record id.
  const seen = new Map<string, number>();
  const analytics = new PulsarWsConsumer(pulsarOptions().parse({ url, topic: 'centre-records', subscription: 'analytics' }), {
    ...driverEnv({ log: silentLogger, baseDir: dir }),
    clientName: 'analytics',
  });
  const client = new pg.Client({ ...PG, database: db.name });
  const count = async () => Number((await client.query('SELECT count(*) AS n FROM edge_agent.records')).rows[0].n);
  const atLeast = async (n: number, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (let have = await count(); have < n; have = await count()) {
      if (Date.now() > deadline) throw new Error(`only ${have} of ${n} records after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  try {
    await Promise.all([0, 1, 2].map(start));
    await client.connect();
    await analytics.start(async (m) => {
      for (const line of Buffer.from(m.bytes).toString('utf8').split('\n').filter(Boolean)) {
        const id = (JSON.parse(line) as { record: { id: string } }).record.id;
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
    });
    await gateways.connect();
    const total = DEVICES * BATCHES * RECORDS;
    // As a gateway's sender does: a write that may succeed later (a producer still opening) is tried again.
    const send = async (i: number, seq: number) => {
      const batch = { device: fleet.devices[i]!.id, stream: 'telemetry', epoch: '0707070707070707', seq, count: RECORDS, bytes: fleet.seal(i, seq, RECORDS) };
      for (let attempt = 1; ; attempt++) {
        try {
          return await gateways.write(batch);
        } catch (err) {
          if (!(err as { retryable?: boolean }).retryable || attempt >= 20) throw err;
          await gateways.waitConnected(AbortSignal.timeout(30_000));
        }
      }
    };
    const publishing = (async () => {
      // Ten gateways at a time: each opens its producer on its first batch.
      for (let from = 0; from < DEVICES; from += 10) {
        await Promise.all(
          fleet.devices.slice(from, from + 10).map(async (_, j) => {
            for (let seq = 1; seq <= BATCHES; seq++) await send(from + j, seq);
          }),
        );
      }
    })();
    for (let k = 1; k <= KILLS; k++) {
      await atLeast(Math.floor((total * k) / (KILLS + 2)), 120_000);
      const victim = Math.floor(Math.random() * 3);
      slots[victim]!.child.kill('SIGKILL');
      await slots[victim]!.exited;
      await start(victim);
    }
    await publishing;
    await atLeast(total, 120_000);
    const expected: string[] = [];
    for (let i = 0; i < DEVICES; i++) for (let seq = 1; seq <= BATCHES; seq++) expected.push(...fleet.ids(i, seq, RECORDS));
    const rows = (await client.query<{ id: string }>("SELECT record->>'id' AS id FROM edge_agent.records")).rows.map((r) => r.id);
    assert.deepEqual(rows.toSorted(), expected.toSorted(), 'every record in PostgreSQL exactly once');
    // The topic is written before the batch is acknowledged: everything PostgreSQL holds is on it too.
    const deadline = Date.now() + 60_000;
    while (seen.size < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual([...seen.keys()].toSorted(), expected.toSorted(), 'every record on the records topic');
    for (const s of slots) assert.doesNotMatch(s.stderr(), /receiver output failed/, s.stderr().slice(-1000));
  } finally {
    await client.end().catch(() => {});
    await analytics.close();
    await gateways.close();
    for (const s of slots) if (s && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
    await Promise.all(slots.filter(Boolean).map((s) => s.exited));
    rmSync(dir, { recursive: true, force: true });
  }
});
