import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { x25519 } from '../../agent/keys/x25519.ts';
import { writeKeyPair } from '../../agent/keys/keys.ts';
import { startMosquitto, type Mosquitto } from '../lib/mosquitto.ts';
import { chaosConfigYaml, TOPICS } from './chaos-config.ts';
import { applyFault, diskFullSupported, FAULT_KINDS, type FaultKind, type FaultTargets } from './faults.ts';
import { PowerCutMount, powerCutUnavailable } from './fuse-mount.ts';
import { MqttProducer, PgProducer, SOURCE_KINDS, SqlProducer, type PostgresServer, type Producer, type SourceKind } from './ground-truth.ts';
import { LinkProxy } from './link-proxy.ts';
import { OutputTally } from './output-tally.ts';
import { Rng } from './rng.ts';
import { Supervised } from './supervisor.ts';

export interface ChaosOptions {
  durationMs: number;
  seed: number;
  faults: FaultKind[];
  /** Records per second from each producer. */
  rate: number;
  /** No delivery progress for this long, with work outstanding and no fault holding it back, is a stall. */
  stallMs: number;
  /** After the faults: how long without progress the run waits for the rest to arrive before counting it lost. */
  drainMs: number;
  /** Keep the run's directory (configs, logs, output) for inspection. */
  keep: boolean;
  /** Also feed a PostgreSQL table (the `pg` stream) on this server. */
  postgres?: PostgresServer;
  log: (line: string) => void;
}

export interface KindResult {
  accepted: number;
  delivered: number;
  lost: number;
  duplicated: number;
  rewrittenLines: number;
  /** Up to 10 lost ids, to start the search with. */
  lostSample: number[];
}

export interface ChaosResult {
  seed: number;
  faultMs: number;
  faults: Partial<Record<FaultKind, number>>;
  /** Fault kinds asked for that cannot run here, with the reason. */
  skipped: string[];
  /** The streams this run fed. */
  kinds: Partial<Record<SourceKind, KindResult>>;
  restarts: { agent: number; receiver: number; broker: number };
  crashes: { agent: number; receiver: number };
  crashLoops: number;
  stalls: number;
  tornLines: number;
  /** Records the agent's queue logged as dropped (counted), by stream and reason: part of any loss above. */
  queueDrops: Record<string, number>;
  dir: string;
}

/** The drops the agent's queue counted and logged ("records dropped"), summed by stream and reason. */
function countedDrops(agentLog: string): Record<string, number> {
  const drops: Record<string, number> = {};
  let text = '';
  try {
    text = readFileSync(agentLog, 'utf8');
  } catch {
    return drops;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('"msg":"records dropped"')) continue;
    try {
      const d = JSON.parse(line) as { stream: string; reason: string; records: number };
      drops[`${d.stream}/${d.reason}`] = (drops[`${d.stream}/${d.reason}`] ?? 0) + d.records;
    } catch {}
  }
  return drops;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One chaos run: a real agent and a real receiver (separate processes), the centre's Mosquitto behind a
 * cuttable link, a site Mosquitto for the MQTT sources, a SQLite table and two MQTT publishers as ground
 * truth; random faults from `seed` for `durationMs`, then everything restored and drained, then counted.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const { log } = options;
  const started = Date.now();
  const at = () => `+${((Date.now() - started) / 1000).toFixed(1)}s`;
  const rng = new Rng(options.seed);
  const skipped: string[] = [];
  let faults = options.faults;
  const fsUnavailable = powerCutUnavailable();
  if (fsUnavailable && faults.some((f) => f === 'power-cut' || f === 'disk-full')) {
    skipped.push(...faults.filter((f) => f === 'power-cut' || f === 'disk-full').map((f) => `${f}: ${fsUnavailable}`));
    faults = faults.filter((f) => f !== 'power-cut' && f !== 'disk-full');
  }
  if (faults.includes('disk-full') && !diskFullSupported()) {
    skipped.push('disk-full: scripts/chaos/powercut_fs.py has no capacity command yet');
    faults = faults.filter((f) => f !== 'disk-full');
  }
  const useFs = faults.includes('power-cut') || faults.includes('disk-full');

  const dir = mkdtempSync(join(tmpdir(), 'edge-chaos-'));
  writeKeyPair(x25519, join(dir, 'keys', 'device'));
  writeKeyPair(x25519, join(dir, 'keys', 'centre'));
  const backing = join(dir, 'queue-disk');
  const dataDir = join(dir, 'queue');
  mkdirSync(backing);
  mkdirSync(dataDir);

  const cleanups: (() => Promise<void> | void)[] = [];
  const stoppers: (() => Promise<void>)[] = [];
  try {
    const site = await startMosquitto({ persistence: true });
    cleanups.push(() => site.stop());
    const centre: Mosquitto = await startMosquitto({ persistence: true });
    cleanups.push(() => centre.stop());
    const link = await LinkProxy.start(centre.port);
    cleanups.push(() => link.close());
    let mount = useFs ? await PowerCutMount.mount(backing, dataDir) : undefined;
    cleanups.push(() => mount?.unmount());

    const pgProducer = options.postgres ? await PgProducer.open(options.postgres) : undefined;
    cleanups.push(async () => {
      await pgProducer?.close();
    });
    const output = join(dir, 'received.jsonl');
    const configPath = join(dir, 'agent.yaml');
    writeFileSync(
      configPath,
      chaosConfigYaml({
        dataDir,
        sinkUrl: `mqtt://127.0.0.1:${link.port}`,
        centreUrl: centre.url,
        siteUrl: site.url,
        sqlitePath: join(dir, 'truth.db'),
        output,
        receiverState: join(dir, 'receiver.db'),
        deadLetter: join(dir, 'dead-letter.db'),
        ...(pgProducer && options.postgres ? { postgres: { ...options.postgres, database: pgProducer.database } } : {}),
      }),
    );
    const event = (line: string) => log(`${at()} ${line}`);
    const receiver = new Supervised('receiver', ['receive', '--config', configPath], join(dir, 'receiver.log'), /"msg":"subscribed/, event);
    const agent = new Supervised('agent', ['run', '--config', configPath], join(dir, 'agent.log'), /"msg":"agent running"/, event);
    stoppers.push(
      () => agent.stop(),
      () => receiver.stop(),
    );

    const producers: Producer[] = [
      new SqlProducer(join(dir, 'truth.db')),
      ...(pgProducer ? [pgProducer] : []),
      await MqttProducer.open('mqtt_q1', site.url, TOPICS.mqtt_q1, 1),
      await MqttProducer.open('mqtt_q2', site.url, TOPICS.mqtt_q2, 2),
    ];
    cleanups.push(async () => {
      for (const p of producers) await p.close();
    });

    // The centre subscribes before the gateway publishes (docs/operations.md), and the agent's MQTT sources
    // have their sessions before the devices publish, so nothing is discarded for want of a subscriber.
    if (!(await receiver.start())) throw new Error(`the receiver did not subscribe: ${receiver.lastWords}`);
    if (!(await agent.start())) throw new Error(`the agent did not start: ${agent.lastWords}`);

    const tally = new OutputTally(output);
    let faultActive = false;
    let calmSince = Date.now();
    let lastProgress = Date.now();
    let stalls = 0;
    let inStall = false;
    const accepted = () => producers.reduce((s, p) => s + p.accepted, 0);
    const delivered = () => SOURCE_KINDS.reduce((s, k) => s + tally.delivered(k), 0);
    const monitor = setInterval(() => {
      if (tally.poll() > 0) {
        lastProgress = Date.now();
        inStall = false;
      }
      const quietFor = Date.now() - Math.max(lastProgress, calmSince);
      if (!faultActive && !inStall && accepted() > delivered() && quietFor > options.stallMs) {
        stalls++;
        inStall = true;
        event(`STALL: no delivery for ${Math.round(quietFor / 1000)} s with ${accepted() - delivered()} records outstanding and no fault active`);
      }
    }, 250);
    cleanups.push(() => clearInterval(monitor));

    // Producers: each tick hands over rate/10 records per kind; a tick still waiting for its acks is not
    // overlapped, so a slow broker slows the producers instead of piling up publishes.
    let producing = true;
    const produce = (async () => {
      while (producing) {
        const tick = Date.now();
        await Promise.all(producers.map((p) => p.tick(Math.max(1, Math.round(options.rate / 10)))));
        await sleep(Math.max(0, 100 - (Date.now() - tick)));
      }
    })();

    cleanups.push(async () => {
      producing = false;
      await produce.catch(() => {});
    });

    const targets: FaultTargets = {
      agent,
      receiver,
      centre,
      link,
      get mount() {
        return mount;
      },
      remount: async () => {
        mount = await PowerCutMount.mount(backing, dataDir);
        return mount;
      },
      log: event,
    };
    const counts: Partial<Record<FaultKind, number>> = {};
    const faultEnd = Date.now() + options.durationMs;
    while (faults.length > 0 && Date.now() < faultEnd) {
      // Drawn in a fixed order, so a seed always gives the same faults with the same parameters; when they
      // land depends on the machine's pace: each waits for the stream to make progress first.
      const kind = rng.pick(faults);
      const gapMs = rng.int(300, 3_000);
      const param = rng.next();
      const from = delivered();
      const progressDeadline = Date.now() + 30_000;
      await sleep(gapMs);
      while (delivered() === from && accepted() > from && Date.now() < progressDeadline) await sleep(100);
      faultActive = true;
      const faultStarted = Date.now();
      try {
        await applyFault(kind, param, targets);
      } finally {
        faultActive = false;
        calmSince = Date.now();
      }
      event(`${kind} (${((calmSince - faultStarted) / 1000).toFixed(1)} s); delivered ${delivered()} of ${accepted()}`);
      counts[kind] = (counts[kind] ?? 0) + 1;
    }
    if (faults.length === 0) await sleep(options.durationMs);
    const faultMs = Date.now() - started;

    producing = false;
    await produce;
    event(`faults over; accepted ${accepted()}, delivered so far ${delivered()}; draining`);
    for (;;) {
      tally.poll();
      if (producers.every((p) => tally.delivered(p.kind) >= p.accepted)) break;
      if (Date.now() - lastProgress > options.drainMs) {
        event(`drain: no progress for ${options.drainMs / 1000} s, counting the rest as lost`);
        break;
      }
      await sleep(250);
    }
    // The last batches a receiver rewrote after a crash are in the file by now; read them too.
    tally.poll();

    const kinds: Partial<Record<SourceKind, KindResult>> = {};
    for (const p of producers) {
      const missing = tally.missing(p.kind, p.accepted);
      const t = tally.tally(p.kind);
      kinds[p.kind] = {
        accepted: p.accepted,
        delivered: t.delivered,
        lost: missing.length,
        duplicated: t.duplicated,
        rewrittenLines: t.rewrittenLines,
        lostSample: missing.slice(0, 10),
      };
    }
    return {
      seed: options.seed,
      faultMs,
      faults: counts,
      skipped,
      kinds,
      restarts: { agent: agent.counts.starts - 1, receiver: receiver.counts.starts - 1, broker: targets.brokerRestarts ?? 0 },
      crashes: { agent: agent.counts.crashes, receiver: receiver.counts.crashes },
      crashLoops: agent.counts.crashLoops + receiver.counts.crashLoops,
      stalls,
      tornLines: tally.tornLines,
      queueDrops: countedDrops(join(dir, 'agent.log')),
      dir,
    };
  } finally {
    for (const stop of stoppers) await stop().catch(() => {});
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
    if (!options.keep) rmSync(dir, { recursive: true, force: true });
  }
}

export { FAULT_KINDS, type FaultKind };
