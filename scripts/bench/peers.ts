/**
 * Side by side with a Mosquitto bridge (`npm run bench -- --peers`): the same realistic records (the synthetic
 * source's `realistic` shape at 120 B: a timestamp each, noisy floats, 400 sensor ids, a status), published as
 * JSON with QoS 1 by a simulated device (one process, `--window` publishes awaiting their PUBACK at once) to a
 * Mosquitto on the gateway side, and carried to a Mosquitto at the centre by
 *
 *   agent          the agent's MQTT source subscribed to the gateway's broker → queue → MQTT sink to the
 *                  centre; the centre's `receive` (a process of its own) counts the records it writes;
 *   bridge         the gateway's broker with `persistence true` bridging `site/#` to the centre (QoS 1), at
 *                  Mosquitto's defaults otherwise (autosave_interval 1800 s: nothing saved during a run);
 *   bridge+durable the same with `autosave_on_changes true`, `autosave_interval N` (`--autosave-changes`,
 *                  default 1: the in-memory database saved after every change, the nearest Mosquitto comes
 *                  to committing each message; it still acknowledges a message before saving it). Saving the
 *                  whole database each time runs at a few hundred messages/s, so this variant publishes
 *                  `--durable-records` (default 10,000) of the same records, not `--records`;
 *   a subscriber at the centre counts the messages of both bridges.
 *
 * Every broker is a Mosquitto of this script's own on a free loopback port (scripts/lib/mosquitto.ts: TCP
 * nodelay, no queue limit, 100 in flight), stopped by its PID. Gateway side (pinned to core 0): the agent and
 * its broker, or the bridging broker. Everything else (device, centre, counting proxy, this script) on core 1.
 * Measured per variant, from the first publish until the centre has counted every record:
 * - delivered rec/s (wall clock: noisy on a shared machine);
 * - CPU-s per 100k records of the gateway side (user + system, /proc/PID/stat), and each process's share;
 * - disk bytes per record: write_bytes − cancelled_write_bytes of the gateway-side processes (/proc/PID/io),
 *   read once their writes settled (the agent's deletions after the last acknowledgements included);
 * - wire bytes per record between gateway and centre, both ways, at a counting TCP proxy in between;
 * - peak RSS (VmHWM) of the gateway-side processes, summed;
 * - lost and repeated records (published and acknowledged by the gateway's broker, not counted at the centre).
 *
 *   npm run bench -- --peers [--records 100000] [--repeat 1] [--window 100] [--autosave-changes 1]
 *                            [--durable-records 10000] [--variants agent,bridge,bridge+durable] [--executable PATH] [--json FILE]
 *
 * The agent is `--executable`, else dist/edge-agent-linux-x64 when it exists, else the source tree
 * (`node agent/cli/bin.ts`, which applies the executable's heap caps); the report says which.
 * `node scripts/bench/peers.ts --publisher …` is the device (a child of this script).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { recordMaker } from '../../drivers/sources/synthetic/shapes.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { simulateFleet } from '../lib/centre-sim.ts';
import { CountingProxy } from '../lib/counting-proxy.ts';
import { startMosquitto, type Mosquitto } from '../lib/mosquitto.ts';
import { AgentProcess } from './executable.ts';
import { settleWrites } from './executable-scenarios.ts';
import { fmtB, fmtInt, fmtMiBn, median, spread, table } from './format.ts';
import { numberArg, parseArgs, readCpuSeconds, readIo, readMemory } from './proc.ts';
import { Subscriber } from './subscriber.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SELF = fileURLToPath(import.meta.url);
const GATEWAY_CORE = '0';
const OTHER_CORE = '1';
const DEVICE_ID = 'peers-gw';
const TOPICS = 'site/#';
/** No progress at the centre for this long ends a run; what has not arrived is reported lost. */
const STALL_MS = 30_000;

type Variant = 'agent' | 'bridge' | 'bridge+durable';
const VARIANTS: Variant[] = ['agent', 'bridge', 'bridge+durable'];

interface Run {
  variant: Variant;
  published: number;
  delivered: number;
  seconds: number;
  /** CPU seconds per gateway-side process, by role. */
  cpu: Record<string, number>;
  diskBytes: number;
  wireBytes: number;
  /** VmHWM per gateway-side process, by role. */
  peakRss: Record<string, number>;
  payloadBytes: number;
}

interface PublisherResult {
  acked: number;
  payloadBytes: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);

/** The device: realistic records as JSON, one message each on `site/<sensor id>`, QoS 1, `window` awaiting PUBACK. */
async function publisher(args: Map<string, string>): Promise<void> {
  const records = numberArg(args, 'records', 0);
  const window = numberArg(args, 'window', 100);
  const make = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 120 });
  const client = await mqtt.connectAsync(args.get('url')!, { clientId: 'peers-device', protocolVersion: 5, reconnectPeriod: 0 });
  await new Promise<void>((go) => {
    process.once('message', () => go());
    process.send!('ready');
  });
  let next = 0;
  let acked = 0;
  let payloadBytes = 0;
  const lane = async () => {
    while (next < records) {
      const n = ++next;
      const record = make(n, Date.now(), 0);
      const payload = JSON.stringify(record);
      payloadBytes += payload.length;
      await client.publishAsync(`site/${record.sensor as string}`, payload, { qos: 1 });
      acked++;
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  await client.endAsync();
  process.send!({ acked, payloadBytes } satisfies PublisherResult);
}

/** The device as a child on the other core; resolves with a start function once it is connected. */
async function startPublisher(url: string, records: number, window: number): Promise<{ go: () => Promise<PublisherResult>; child: ChildProcess }> {
  const child = spawn(
    'taskset',
    ['-c', OTHER_CORE, process.execPath, SELF, '--publisher', '--url', url, '--records', String(records), '--window', String(window)],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the device publisher exited (${code})`))));
  exited.catch(() => {});
  await Promise.race([new Promise((ready) => child.once('message', ready)), exited]);
  return {
    child,
    go: () => {
      child.send('go');
      return Promise.race([new Promise<PublisherResult>((done) => child.once('message', (m) => done(m as PublisherResult))), exited]);
    },
  };
}

function pin(pid: number, core: string): void {
  const r = spawnSync('taskset', ['-cp', core, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset -cp ${core} ${pid} failed: ${r.stderr || r.error?.message}`);
}

/** Polls until `count()` reaches `target` or stops moving for STALL_MS; returns when the last one came. */
async function until(target: number, count: () => number): Promise<number> {
  let last = count();
  let lastAt = performance.now();
  while (count() < target) {
    await sleep(5);
    const now = count();
    if (now !== last) {
      last = now;
      lastAt = performance.now();
    } else if (performance.now() - lastAt > STALL_MS) break;
  }
  return lastAt;
}

/** The agent to measure: how to start it, and what the report says about it. */
interface Agent {
  executable: string;
  leading: string[];
  label: string;
}

function chooseAgent(args: Map<string, string>, workDir: string): Agent {
  const given = args.get('executable');
  const dist = join(ROOT, 'dist', 'edge-agent-linux-x64');
  const path = given ?? (existsSync(dist) ? dist : undefined);
  if (path === undefined) {
    return {
      executable: process.execPath,
      leading: [join(ROOT, 'agent', 'cli', 'bin.ts')],
      label: 'the source tree (node agent/cli/bin.ts, under the executable’s heap caps)',
    };
  }
  // A private copy: a rebuild of dist/ elsewhere must not swap the executable mid-run.
  const copy = join(workDir, 'edge-agent');
  copyFileSync(path, copy);
  const built = new Date(statSync(path).mtimeMs).toISOString().slice(0, 16).replace('T', ' ');
  return {
    executable: copy,
    leading: [],
    label: `the executable ${relative(ROOT, path) || path} (built ${built} UTC${given ? ', given with --executable' : ''})`,
  };
}

/** One variant: brokers, proxy and counters of its own, everything stopped by PID at the end. */
async function runVariant(variant: Variant, o: { records: number; window: number; autosave: number; agent: Agent; workDir: string }): Promise<Run> {
  const dir = mkdtempSync(join(o.workDir, `${variant.replace('+', '-')}-`));
  const centre = await startMosquitto();
  pin(centre.pid, OTHER_CORE);
  const proxy = await CountingProxy.start(centre.port);
  const stops: (() => Promise<unknown>)[] = [];
  let gateway: Mosquitto | undefined;
  try {
    const bridged = variant !== 'agent';
    gateway = await startMosquitto({
      persistence: bridged,
      extra: bridged
        ? [
            ...(variant === 'bridge+durable' ? ['autosave_on_changes true', `autosave_interval ${o.autosave}`] : []),
            'connection centre',
            `address 127.0.0.1:${proxy.port}`,
            `topic ${TOPICS} out 1`,
          ]
        : [],
    });
    pin(gateway.pid, GATEWAY_CORE);
    const roles: Record<string, number> = { broker: gateway.pid };
    let delivered: () => number;
    if (bridged) {
      const subscriber = await Subscriber.start(centre.url, TOPICS);
      stops.push(() => subscriber.close());
      delivered = () => subscriber.messages;
      // The bridge has connected through the proxy once the centre's CONNACK came back.
      while (proxy.in === 0) await sleep(10);
    } else {
      const receiver = await startReceiver(o.agent, dir, centre.url);
      stops.push(receiver.stop);
      delivered = () => receiver.lines;
      const agent = new AgentProcess(o.agent.executable, agentConfig(dir, gateway.url, proxy.port), GATEWAY_CORE, {}, o.agent.leading);
      stops.unshift(() => agent.stop());
      while (!agent.logged('agent running')) {
        if (!agent.running) throw new Error(`the agent exited: ${agent.failure}`);
        await sleep(10);
      }
      roles.agent = agent.pid;
    }
    const pids = Object.values(roles);
    const written = () =>
      pids.reduce((total, pid) => {
        const io = readIo(pid);
        return total + io.write_bytes - io.cancelled_write_bytes;
      }, 0);
    await settleWrites(written);
    const cpu0 = Object.fromEntries(Object.entries(roles).map(([role, pid]) => [role, readCpuSeconds(pid)]));
    const disk0 = written();
    const wire0 = proxy.total;
    const device = await startPublisher(gateway.url, o.records, o.window);
    stops.push(async () => device.child.kill());
    const t0 = performance.now();
    const published = await device.go();
    const lastAt = await until(o.records, delivered);
    const count = delivered();
    await settleWrites(written);
    return {
      variant,
      published: published.acked,
      delivered: count,
      seconds: (lastAt - t0) / 1000,
      cpu: Object.fromEntries(Object.entries(roles).map(([role, pid]) => [role, readCpuSeconds(pid) - cpu0[role]!])),
      diskBytes: written() - disk0,
      wireBytes: proxy.total - wire0,
      peakRss: Object.fromEntries(Object.entries(roles).map(([role, pid]) => [role, readMemory(pid).hwm])),
      payloadBytes: published.payloadBytes,
    };
  } finally {
    for (const stop of stops) await stop().catch(() => {});
    await proxy.close();
    for (const broker of [gateway, centre]) {
      if (!broker) continue;
      await broker.stop();
      rmSync(broker.dir, { recursive: true, force: true });
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

let keys: { centreKey: string; centrePub: string; deviceKey: string; devicePub: string } | undefined;

/** One key pair each for the centre and the gateway, made once per bench (scripts/lib/centre-sim.ts). */
async function keyFiles(workDir: string) {
  if (keys) return keys;
  const fleet = simulateFleet(x25519, join(workDir, 'keys'), 1, { prefix: DEVICE_ID });
  const device = fleet.devices[0]!;
  keys = {
    centreKey: fleet.centreKeyFile,
    centrePub: fleet.centreKeyFile.replace(/\.key$/, '.pub'),
    deviceKey: device.publicKeyFile.replace(/\.pub$/, '.key'),
    devicePub: device.publicKeyFile,
  };
  return keys;
}

function agentConfig(dir: string, localUrl: string, proxyPort: number): string {
  const k = keys!;
  const path = join(dir, 'agent.yaml');
  mkdirSync(join(dir, 'data'), { recursive: true });
  // Product defaults everywhere but the addresses: the source at its defaults (MQTT 5, persistent session,
  // max_pending 1000), the queue's commit_interval and commit_every_records, the MQTT 5 sink.
  writeFileSync(
    path,
    `device: { id: ${DEVICE_ID}-0000 }
data_dir: data
log: { level: info }
keys: { device_private: ${k.deviceKey}, centre_public: ${k.centrePub} }
sources:
  - type: mqtt
    name: devices
    url: ${localUrl}
    topics: [{ filter: "${TOPICS}", qos: 1 }]
    payload: json
sink:
  type: mqtt
  url: mqtt://127.0.0.1:${proxyPort}
`,
  );
  return path;
}

/** `receive` at the centre on the other core, its JSON lines (one per record) counted as they come. */
async function startReceiver(agent: Agent, dir: string, centreUrl: string): Promise<{ readonly lines: number; stop: () => Promise<void> }> {
  const k = keys!;
  const config = join(dir, 'centre.yaml');
  writeFileSync(
    config,
    `data_dir: ${join(dir, 'centre-data')}
log: { level: info, format: json }
receiver:
  private_key: ${k.centreKey}
  input: { type: mqtt, url: ${centreUrl}, client_id: peers-centre, protocol_version: 5 }
  devices:
    - { id: ${DEVICE_ID}-0000, public_keys: [${k.devicePub}] }
`,
  );
  const child = spawn('taskset', ['-c', OTHER_CORE, agent.executable, ...agent.leading, 'receive', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let lines = 0;
  child.stdout!.on('data', (d: Buffer) => {
    for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++;
  });
  let stderr = '';
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  await new Promise<void>((started, failed) => {
    child.stderr!.on('data', (d) => {
      stderr = (stderr + d).slice(-4000);
      if (stderr.includes('"msg":"receiver running"')) started();
    });
    void exited.then(() => failed(new Error(`the receiver exited: ${stderr}`)));
  });
  return {
    get lines() {
      return lines;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const per100k = (seconds: number, records: number) => (seconds / Math.max(1, records)) * 100_000;

function render(
  runs: Run[],
  o: { variants: Variant[]; records: number; durableRecords: number; repeat: number; window: number; autosave: number; agent: Agent; load: [string, string] },
): string {
  const of = (v: Variant) => runs.filter((r) => r.variant === v);
  // A figure that does not apply to a variant (undefined) is shown as '–', and so is a ratio to nothing (0).
  const values = (v: Variant, f: (r: Run) => number | undefined) => of(v).flatMap((r) => f(r) ?? []);
  const cell = (v: Variant, f: (r: Run) => number | undefined, fmt: (n: number) => string) => spread(values(v, f), fmt);
  const ratio = (v: Variant, f: (r: Run) => number | undefined) => {
    const a = values('agent', f);
    const b = values(v, f);
    return a.length === 0 || b.length === 0 || median(b) === 0 ? '–' : `${(median(a) / median(b)).toFixed(2)}×`;
  };
  const cpuAll = (r: Run) => per100k(sum(r.cpu), r.delivered);
  const cpuOwn = (r: Run) => per100k(r.cpu.agent ?? r.cpu.broker!, r.delivered);
  const metrics: [string, (r: Run) => number | undefined, (n: number) => string][] = [
    ['delivered rec/s (wall clock)', (r) => r.delivered / r.seconds, fmtInt],
    ['CPU-s per 100k records, gateway side (all its processes)', cpuAll, (n) => n.toFixed(2)],
    ['CPU-s per 100k records, the agent’s / the bridging broker’s own', cpuOwn, (n) => n.toFixed(2)],
    [
      'CPU-s per 100k records, the gateway’s broker beside the agent',
      (r) => (r.cpu.agent === undefined ? undefined : per100k(r.cpu.broker!, r.delivered)),
      (n) => n.toFixed(2),
    ],
    ['disk bytes written per record (gateway side, /proc/PID/io)', (r) => r.diskBytes / Math.max(1, r.delivered), fmtB],
    ['wire bytes per record, gateway ↔ centre (both ways)', (r) => r.wireBytes / Math.max(1, r.delivered), fmtB],
    ['peak RSS, gateway side (VmHWM summed), MiB', (r) => sum(r.peakRss), fmtMiBn],
    ['peak RSS, the agent’s / the bridging broker’s own, MiB', (r) => r.peakRss.agent ?? r.peakRss.broker!, fmtMiBn],
  ];
  const bridges = o.variants.filter((v) => v !== 'agent');
  const ratios = o.variants.includes('agent') ? bridges : [];
  const rows: string[][] = [['per variant', ...o.variants, ...ratios.map((v) => `agent ÷ ${v}`)]];
  for (const [name, f, fmt] of metrics) rows.push([name, ...o.variants.map((v) => cell(v, f, fmt)), ...ratios.map((v) => ratio(v, f))]);
  const counts = (name: string, f: (r: Run) => number) =>
    rows.push([
      name,
      ...o.variants.map((v) =>
        of(v)
          .map((r) => fmtInt(f(r)))
          .join(', '),
      ),
      ...ratios.map(() => ''),
    ]);
  counts('published (acknowledged by the gateway’s broker)', (r) => r.published);
  counts('delivered at the centre', (r) => r.delivered);
  counts('lost', (r) => Math.max(0, r.published - r.delivered));
  counts('repeated', (r) => Math.max(0, r.delivered - r.published));
  const own = median(of('agent').map(cpuOwn));
  const goal = (v: Variant) => {
    const theirs = median(of(v).map(cpuOwn));
    return `${own.toFixed(2)} ${own <= theirs ? '≤' : '>'} ${theirs.toFixed(2)} (${v}): ${own <= theirs ? 'met' : 'NOT met'}`;
  };
  const payload = median(runs.map((r) => r.payloadBytes / Math.max(1, r.published)));
  return [
    `Side by side with a Mosquitto bridge: ${fmtInt(o.records)} realistic records (${payload.toFixed(0)} B of JSON each, one QoS 1 message per record, ${o.window} awaiting PUBACK at the device), ${o.repeat} round(s) of the three variants, median (min–max)`,
    `agent: ${o.agent.label}; its MQTT source on the gateway's Mosquitto → queue → MQTT sink; \`receive\` at the centre counts records`,
    `bridge: the gateway's Mosquitto (persistence true, autosave at its default 1800 s) bridging ${TOPICS} out with QoS 1; bridge+durable: autosave_on_changes true, autosave_interval ${o.autosave}, on the first ${fmtInt(o.durableRecords)} records`,
    `gateway side pinned to core ${GATEWAY_CORE}; device, centre, proxy and counters on core ${OTHER_CORE}; load average at start ${o.load[0]}, at end ${o.load[1]}`,
    '',
    table(rows),
    '',
    ...(ratios.length > 0 ? [`goal, the agent's own CPU per record ≤ the bridge's: ${ratios.map(goal).join('; ')}`] : []),
    'disk: write_bytes − cancelled_write_bytes of the gateway-side processes; wire: TCP payload both ways at a counting proxy between gateway and centre',
  ].join('\n');
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function main(args: Map<string, string>): Promise<void> {
  const records = numberArg(args, 'records', 100_000);
  const repeat = Math.max(1, numberArg(args, 'repeat', 1));
  const window = numberArg(args, 'window', 100);
  const autosave = numberArg(args, 'autosave-changes', 1);
  const durableRecords = Math.min(records, numberArg(args, 'durable-records', 10_000));
  const variants = (args.get('variants') ?? VARIANTS.join(',')).split(',') as Variant[];
  for (const v of variants) if (!VARIANTS.includes(v)) throw new Error(`--variants: ${v} is none of ${VARIANTS.join(', ')}`);
  const workDir = mkdtempSync(join(tmpdir(), 'edge-peers-'));
  const load0 = loadavg();
  pin(process.pid, OTHER_CORE);
  const runs: Run[] = [];
  let agent: Agent | undefined;
  try {
    agent = chooseAgent(args, workDir);
    await keyFiles(workDir);
    process.stderr.write(`side by side with a Mosquitto bridge: ${fmtInt(records)} records, ${repeat} round(s); agent: ${agent.label}\n`);
    // Alternated round by round, so that a change in the machine's load falls on every variant alike.
    for (let round = 1; round <= repeat; round++) {
      for (const variant of variants) {
        process.stderr.write(`  ${variant} (${round}/${repeat}) … `);
        const r = await runVariant(variant, { records: variant === 'bridge+durable' ? durableRecords : records, window, autosave, agent, workDir });
        runs.push(r);
        process.stderr.write(
          `${fmtInt(r.delivered / r.seconds)} rec/s, ${per100k(sum(r.cpu), r.delivered).toFixed(2)} CPU-s per 100k, ${fmtInt(r.published - r.delivered)} lost\n`,
        );
      }
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  process.stdout.write(`${render(runs, { variants, records, durableRecords, repeat, window, autosave, agent: agent!, load: [load0, loadavg()] })}\n`);
  const json = args.get('json');
  if (json) writeFileSync(json, JSON.stringify({ records, durableRecords, repeat, window, autosave, agent: agent!.label, runs }, null, 2));
}

const args = parseArgs(process.argv.slice(2));
if (args.has('help'))
  process.stdout.write(
    `${readFileSync(SELF, 'utf8')
      .split('*/')[0]!
      .replace(/^\/\*\*?|^ \* ?/gm, '')}\n`,
  );
else if (args.has('publisher')) await publisher(args);
else await main(args);
