/**
 * The centre scaled out (docs/centre.md): `edge-agent receive` processes sharing one MQTT 5 shared
 * subscription on a Mosquitto of our own, writing to PostgreSQL, fed by 100 simulated gateways (distinct
 * device keys, batches sealed with the project's envelope code).
 *
 * 1. Three receivers, SIGKILLed and restarted at random while the batches flow, half the gateways re-sending
 *    each batch once: every record lands in PostgreSQL exactly once (counted, and the identities compared), on
 *    a fresh database of the machine's server, dropped after.
 * 2. A private PostgreSQL (initdb + postgres on a free port, stopped by PID) crashed mid-stream and started
 *    again: the receivers wait for it, resume, and nothing is lost or doubled.
 * 3. A receiver still waiting for its database at start stops at SIGTERM.
 *
 * Scale with EDGE_CENTRE_BATCHES (batches per device, default 6) and EDGE_CENTRE_RECORDS (records per batch,
 * default 10); EDGE_CENTRE_KILLS (default 4) receivers killed in test 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { x25519 } from '../../agent/keys/x25519.ts';
import { simulateFleet, type SimulatedFleet } from '../../scripts/lib/centre-sim.ts';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { createPostgresDatabase, PG, postgresUnavailable } from '../helpers/db.ts';
import { privatePostgresUnavailable, startPrivatePostgres } from '../helpers/private-postgres.ts';
import { runCli } from '../helpers/processes.ts';

const DEVICES = 100;
const BATCHES = Number(process.env.EDGE_CENTRE_BATCHES ?? 6);
const RECORDS = Number(process.env.EDGE_CENTRE_RECORDS ?? 10);
const KILLS = Number(process.env.EDGE_CENTRE_KILLS ?? 4);
const PREFIX = 'edge-agent/v1';

const noServer = await postgresUnavailable();
if (noServer) console.log(`# skipped test 1: ${noServer}`);
const noPrivate = privatePostgresUnavailable();
if (noPrivate) console.log(`# skipped test 2: ${noPrivate}`);

function receiverYaml(fleet: SimulatedFleet, i: number, brokerUrl: string, pgUrl: string): string {
  return `data_dir: data-${i}
log: { level: info, format: json }
receiver:
  private_key: ${fleet.centreKeyFile}
  input: { type: mqtt, url: ${brokerUrl}, client_id: centre-${i}, shared_group: centre, protocol_version: 5, session_expiry: 1h }
  postgres: { url: "${pgUrl}", prune_every: 5s }
  devices:
${fleet.devicesYaml(4)}
`;
}

/** Receivers as `receive` processes, by slot; each slot keeps its config (client id, session) across restarts. */
function receivers(dir: string, fleet: SimulatedFleet, brokerUrl: string, pgUrl: string, n: number) {
  const configs = Array.from({ length: n }, (_, i) => {
    const path = join(dir, `centre-${i}.yaml`);
    writeFileSync(path, receiverYaml(fleet, i, brokerUrl, pgUrl));
    return path;
  });
  const slots: ReturnType<typeof runCli>[] = [];
  const starts: number[] = Array(n).fill(0);
  const start = async (i: number) => {
    const proc = runCli(['receive', '--config', configs[i]!]);
    slots[i] = proc;
    starts[i]!++;
    await proc.stderrMatches(/"msg":"receiver running"/, 60_000);
  };
  return {
    slots,
    starts,
    start,
    async startAll() {
      await Promise.all(configs.map((_, i) => start(i)));
    },
    async kill(i: number) {
      slots[i]!.child.kill('SIGKILL');
      await slots[i]!.exited;
    },
    async stopAll() {
      for (const s of slots) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
      return Promise.all(slots.map((s) => s.exited));
    },
  };
}

/**
 * Batches `from`..`to` of every gateway. With `resend`, every even-numbered gateway also sends its previous batch
 * again with each round (as a gateway whose acknowledgement was lost does): the copy mostly reaches another receiver
 * than the first, and must not be stored twice.
 */
async function publishAll(fleet: SimulatedFleet, brokerUrl: string, from: number, to: number, resend = false): Promise<void> {
  const client = await mqtt.connectAsync(brokerUrl, { clientId: `gateways-${from}`, protocolVersion: 5 });
  try {
    for (let seq = from; seq <= to; seq++) {
      await Promise.all(fleet.devices.map((d, i) => client.publishAsync(`${PREFIX}/${d.id}/telemetry`, fleet.seal(i, seq, RECORDS), { qos: 1 })));
      if (resend && seq > from) {
        const again = fleet.devices.map((d, i) => ({ d, i })).filter(({ i }) => i % 2 === 0);
        await Promise.all(again.map(({ d, i }) => client.publishAsync(`${PREFIX}/${d.id}/telemetry`, fleet.seal(i, seq - 1, RECORDS), { qos: 1 })));
      }
    }
  } finally {
    await client.endAsync();
  }
}

async function count(client: pg.Client): Promise<number> {
  return Number((await client.query('SELECT count(*) AS n FROM edge_agent.records')).rows[0].n);
}

/** Polls the record count (a condition on what other processes write) until it reaches `n`. */
async function atLeast(client: pg.Client, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let have = await count(client); have < n; have = await count(client)) {
    if (Date.now() > deadline) throw new Error(`only ${have} of ${n} records after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every expected record id exactly once, nothing else. */
async function assertExactlyOnce(client: pg.Client, fleet: SimulatedFleet, batches: number): Promise<void> {
  const expected: string[] = [];
  for (let i = 0; i < DEVICES; i++) for (let seq = 1; seq <= batches; seq++) expected.push(...fleet.ids(i, seq, RECORDS));
  const rows = (await client.query<{ id: string }>("SELECT record->>'id' AS id FROM edge_agent.records")).rows.map((r) => r.id);
  assert.equal(rows.length, expected.length, 'record count');
  assert.deepEqual(rows.toSorted(), expected.toSorted(), 'record identities');
  const marks = Number((await client.query('SELECT count(*) AS n FROM edge_agent.records_batches')).rows[0].n);
  assert.equal(marks, DEVICES * batches, 'one dedup mark per batch');
}

test('three receivers on one MQTT 5 shared subscription, SIGKILLed and restarted at random: every record in PostgreSQL exactly once', {
  skip: noServer,
  timeout: 300_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-centre-'));
  const fleet = simulateFleet(x25519, dir, DEVICES);
  const db = await createPostgresDatabase();
  const broker = await startMosquitto();
  const centre = receivers(dir, fleet, broker.url, `postgres://${PG.user}@${PG.host}:${PG.port}/${db.name}`, 3);
  const client = new pg.Client({ ...PG, database: db.name });
  try {
    await centre.startAll();
    await client.connect();
    const total = DEVICES * BATCHES * RECORDS;
    const publishing = publishAll(fleet, broker.url, 1, BATCHES, true);
    // Kill points by progress, not by time: after each further share of the records has landed.
    for (let k = 1; k <= KILLS; k++) {
      const mark = Math.floor((total * k) / (KILLS + 2));
      await atLeast(client, mark, 120_000);
      const victim = Math.floor(Math.random() * 3);
      await centre.kill(victim);
      await centre.start(victim);
    }
    await publishing;
    await atLeast(client, total, 120_000);
    await assertExactlyOnce(client, fleet, BATCHES);
    assert.equal(
      centre.starts.reduce((a, b) => a + b, 0),
      3 + KILLS,
    );
    for (const s of centre.slots) assert.doesNotMatch(s.stderr(), /receiver output failed|"level":50/, s.stderr().slice(-1000));
    // The copies were met and dropped: the receivers' own counts at their stop say so.
    await centre.stopAll();
    const duplicates = centre.slots
      .flatMap((s) => s.stderr().split('\n'))
      .filter((l) => l.includes('"msg":"stopped"'))
      .reduce((sum, l) => sum + (JSON.parse(l) as { stats: { duplicates: number } }).stats.duplicates, 0);
    // Not asserted: a receiver SIGKILLed after meeting copies never logs its count, so the survivors' sum can be
    // 0 on a run where every copy was met by a receiver that was killed later (seen in a full suite). The
    // copies are certain (half the gateways send every batch twice) and PostgreSQL holding each record once
    // (above) is what proves they were dropped.
    console.log(`# copies dropped as duplicates by the receivers that stopped cleanly: ${duplicates}`);
  } finally {
    await client.end().catch(() => {});
    await centre.stopAll();
    await broker.stop();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PostgreSQL crashed and restarted mid-stream: the receivers wait, resume, and nothing is lost or doubled', {
  skip: noPrivate,
  timeout: 300_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-centre-'));
  const fleet = simulateFleet(x25519, dir, DEVICES);
  const server = await startPrivatePostgres();
  const broker = await startMosquitto();
  const centre = receivers(dir, fleet, broker.url, server.url, 2);
  const connect = async () => {
    const c = new pg.Client({ connectionString: server.url });
    c.on('error', () => {});
    await c.connect();
    return c;
  };
  let client = await connect();
  try {
    await centre.startAll();
    const half = Math.ceil(BATCHES / 2);
    await publishAll(fleet, broker.url, 1, half);
    await atLeast(client, (DEVICES * half * RECORDS) / 2, 60_000);
    await client.end().catch(() => {});
    await server.crash();
    // The rest arrives while the database is down; the receivers hold it unacknowledged and wait.
    await publishAll(fleet, broker.url, half + 1, BATCHES);
    await Promise.race(centre.slots.map((s) => s.stderrMatches(/postgres not reachable; waiting for it/)));
    await server.start();
    client = await connect();
    const total = DEVICES * BATCHES * RECORDS;
    await atLeast(client, total, 120_000);
    await assertExactlyOnce(client, fleet, BATCHES);
    for (const s of centre.slots) {
      assert.equal(s.child.exitCode, null, `a receiver exited: ${s.stderr().slice(-1000)}`);
      assert.doesNotMatch(s.stderr(), /receiver output failed|dead-letter/, s.stderr().slice(-1000));
    }
    assert.match(centre.slots.map((s) => s.stderr()).join(''), /postgres reachable again/);
  } finally {
    await client.end().catch(() => {});
    const codes = await centre.stopAll();
    await broker.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(codes, [0, 0]);
  }
});

test('a receiver waiting at start for an unreachable PostgreSQL stops at SIGTERM, exit 0', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-centre-'));
  const fleet = simulateFleet(x25519, dir, 1);
  const broker = await startMosquitto();
  const nothing = await freePort();
  receivers(dir, fleet, broker.url, `postgres://postgres@127.0.0.1:${nothing}/none`, 1); // writes centre-0.yaml
  const proc = runCli(['receive', '--config', join(dir, 'centre-0.yaml')]);
  try {
    await proc.stderrMatches(/postgres not reachable; waiting for it/);
    proc.child.kill('SIGTERM');
    assert.equal(await proc.exited, 0, proc.stderr().slice(-1000));
    assert.match(proc.stderr(), /stopped before the receiver started/);
  } finally {
    proc.child.kill('SIGKILL');
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
