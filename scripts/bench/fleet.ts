/**
 * Fleet remote control end to end (issue 12), with real agent processes (`run`, remote control on) on one
 * Mosquitto of our own, keys made by the real `edge-agent fleet` commands, configs signed with the operator
 * key and published retained on the config topics as `fleet push` does. Times are from just before the
 * operator's publish to the device's retained report arriving at the operator.
 *
 *   1. one device: a good config (`--runs` times) → committed; a bad one (sink on a closed port) with
 *      `fleet.health_deadline: 5s` (`--bad-runs` times) and at its default (`--default-runs` times) → rolled
 *      back; a schema-invalid one (`--bad-runs` times) → refused;
 *   2. a group of `--agents` devices: a group config (`--group-runs` times) → committed on each device;
 *   3. RSS: pairs of agents with the same config, `fleet.enabled` false and true, started together, idle
 *      (1 record/s) and at `--rate` records/s, VmRSS and RssAnon after `--settle` seconds (the median of five
 *      readings a second apart; `--rss-runs` pairs).
 *
 * p50 is the upper median (the value at index ⌊n/2⌋ of the sorted times), max the largest.
 *
 *   node scripts/bench/fleet.ts [--runs 5] [--bad-runs 3] [--default-runs 2] [--agents 20] [--group-runs 3]
 *                               [--rss-runs 3] [--rate 1000] [--settle 20] [--json FILE]
 */
import { rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname } from 'node:path';
import { startMosquitto } from '../lib/mosquitto.ts';
import { freePort } from '../lib/ports.ts';
import { type AgentProcess, makeFleetKeys, Operator, signConfig, startAgent, until, writeAgentConfig } from '../lib/fleet.ts';
import { fmtMiBn, median, table } from './format.ts';
import { numberArg, parseArgs, readMemory } from './proc.ts';

const args = parseArgs(process.argv.slice(2));
const runs = numberArg(args, 'runs', 5);
const badRuns = numberArg(args, 'bad-runs', 3);
const defaultRuns = numberArg(args, 'default-runs', 2);
const agentCount = numberArg(args, 'agents', 20);
const groupRuns = numberArg(args, 'group-runs', 3);
const rssRuns = numberArg(args, 'rss-runs', 3);
const rate = numberArg(args, 'rate', 1000);
const settleS = numberArg(args, 'settle', 20);
const PREFIX = 'fleet-bench';
const GROUP = 'site-a';
/** What the devices publish at 5 records/s during the push timings: enough that the canary is rarely needed. */
const PUSH_RATE = 5;

const commandLine = `node scripts/bench/fleet.ts ${process.argv.slice(2).join(' ')}`.trim();
const load = loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
const startedAt = new Date();
const log = (line: string) => process.stderr.write(`[fleet-bench] ${line}\n`);

const broker = await startMosquitto();
const agents: AgentProcess[] = [];
/** Every directory the run made (agents' data, keys), removed at the end. */
const dirs: string[] = [];
const agentConfig = async (options: Parameters<typeof writeAgentConfig>[0]) => {
  const config = await writeAgentConfig(options);
  dirs.push(dirname(config));
  return config;
};
// Batches count as delivered only when someone subscribes (MQTT 5 "no matching subscribers"): a centre.
const { default: mqtt } = await import('mqtt');
const centre = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `bench-centre-${process.pid}` });
await centre.subscribeAsync('edge-agent/#', { qos: 1 });
const operator = await Operator.connect(broker.url, PREFIX);
const keys = makeFleetKeys();
dirs.push(keys.dir);
const closedPort = await freePort();
const sourceAt = (r: number) => ({ sources: [{ type: 'synthetic', name: 'gen', rate: r, batch: 5 }] });

interface Timing {
  what: string;
  outcome: string;
  ms: number[];
}
const timings: Timing[] = [];
const record = (what: string, outcome: string, ms: number) => {
  let t = timings.find((x) => x.what === what);
  if (!t) timings.push((t = { what, outcome: '', ms: [] }));
  if (!t.outcome.split(', ').includes(outcome)) t.outcome = t.outcome ? `${t.outcome}, ${outcome}` : outcome;
  t.ms.push(ms);
};
const exitedAgent = () => agents.find((a) => a.child.exitCode !== null || a.child.signalCode !== null);

async function waitOnline(devices: string[], timeoutMs: number): Promise<number> {
  const started = performance.now();
  await until(
    () => {
      const dead = exitedAgent();
      if (dead) throw new Error(`an agent exited: ${dead.stderr()}`);
      return devices.every((d) => operator.online(d));
    },
    `${devices.length} device(s) online`,
    timeoutMs,
  );
  return performance.now() - started;
}

const results: Record<string, unknown> = { command: commandLine, loadavg: load };
try {
  // 1. One device.
  const solo = 'solo';
  agents.push(startAgent(await agentConfig({ brokerUrl: broker.url, device: solo, rootPublic: keys.rootPublic, prefix: PREFIX, rate: PUSH_RATE })));
  await waitOnline([solo], 120_000);
  let version = 0;
  const offer = async (what: string, config: Record<string, unknown>, timeoutMs = 180_000) => {
    version++;
    const envelope = signConfig(keys, { device: solo }, version, config);
    const started = await operator.push({ device: solo }, envelope);
    const report = await operator.waitReport(solo, 'device', version, timeoutMs);
    record(what, `${report.outcome}${report.reason ? ` ${report.reason}` : ''}`, report.at - started);
    log(`${what}: v${version} ${report.outcome} ${report.reason ?? ''} in ${Math.round(report.at - started)} ms`);
  };
  // A good config changes the source's rate (a live restart of that source alone), alternating so each differs.
  for (let i = 0; i < runs; i++) await offer('1 device: good config → committed', sourceAt(PUSH_RATE + 1 + (i % 2)));
  const badSink = { sink: { type: 'mqtt', url: `mqtt://127.0.0.1:${closedPort}` } };
  for (let i = 0; i < badRuns; i++)
    await offer('1 device: sink on a closed port, health_deadline 5s → rolled back', { ...badSink, fleet: { health_deadline: '5s' } });
  for (let i = 0; i < defaultRuns; i++) await offer('1 device: sink on a closed port, health_deadline default (60s) → rolled back', badSink);
  for (let i = 0; i < badRuns; i++) await offer('1 device: schema-invalid config → refused', { queue: { max_bytes: 'plenty' } });
  await Promise.all(agents.splice(0).map((a) => a.stop()));

  // 2. A group of devices, all started at once.
  const devices = Array.from({ length: agentCount }, (_, i) => `gw-${String(i + 1).padStart(2, '0')}`);
  for (const device of devices) {
    const config = await agentConfig({ brokerUrl: broker.url, device, rootPublic: keys.rootPublic, prefix: PREFIX, rate: PUSH_RATE, groups: [GROUP] });
    agents.push(startAgent(config));
  }
  const onlineMs = await waitOnline(devices, 600_000);
  results.groupOnlineMs = Math.round(onlineMs);
  log(`${agentCount} agents online after ${(onlineMs / 1000).toFixed(1)} s`);
  const perRun: { p50: number; max: number; outcomes: Record<string, number> }[] = [];
  for (let v = 1; v <= groupRuns; v++) {
    const envelope = signConfig(keys, { group: GROUP }, v, sourceAt(PUSH_RATE + v));
    const started = await operator.push({ group: GROUP }, envelope);
    const ms: number[] = [];
    const outcomes: Record<string, number> = {};
    for (const device of devices) {
      const report = await operator.waitReport(device, `group:${GROUP}`, v, 300_000);
      ms.push(report.at - started);
      outcomes[report.outcome] = (outcomes[report.outcome] ?? 0) + 1;
      record(`${agentCount} devices: group config → committed (all devices, all runs)`, report.outcome, report.at - started);
    }
    const s = [...ms].sort((a, b) => a - b);
    perRun.push({ p50: s[Math.floor(s.length / 2)]!, max: s.at(-1)!, outcomes });
    log(`group push v${v}: ${JSON.stringify(outcomes)} p50 ${Math.round(perRun.at(-1)!.p50)} ms, max ${Math.round(perRun.at(-1)!.max)} ms`);
  }
  results.groupRuns = perRun.map((r) => ({ p50: Math.round(r.p50), max: Math.round(r.max), outcomes: r.outcomes }));
  await Promise.all(agents.splice(0).map((a) => a.stop()));

  // 3. RSS pairs: fleet off and on, started together so both see the same machine.
  const rss: { load: string; run: number; off: ReturnType<typeof readMemory>; on: ReturnType<typeof readMemory> }[] = [];
  for (const [label, r, batch] of [
    ['idle (1 rec/s)', 1, 1],
    [`${rate} rec/s`, rate, 100],
  ] as const) {
    for (let run = 1; run <= rssRuns; run++) {
      const pair: Record<'off' | 'on', AgentProcess> = {} as never;
      for (const side of ['off', 'on'] as const) {
        const config = await agentConfig({
          brokerUrl: broker.url,
          device: `rss-${side}-${run}-${r}`,
          rootPublic: keys.rootPublic,
          prefix: PREFIX,
          rate: r,
          batch,
          fleetEnabled: side === 'on',
        });
        pair[side] = startAgent(config);
        agents.push(pair[side]);
      }
      const deadline = Date.now() + settleS * 1000;
      await until(
        () => {
          if (exitedAgent()) throw new Error(`an agent exited: ${exitedAgent()!.stderr()}`);
          return Date.now() >= deadline;
        },
        'the settle time',
        settleS * 1000 + 5_000,
      );
      await until(() => operator.online(`rss-on-${run}-${r}`), 'the fleet-enabled agent online', 60_000);
      // Five readings a second apart, the median of each field: one reading may land just before a GC.
      const readings: Record<'off' | 'on', ReturnType<typeof readMemory>[]> = { off: [], on: [] };
      for (let i = 0; i < 5; i++) {
        if (i > 0) await new Promise((resolve) => setTimeout(resolve, 1_000));
        readings.off.push(readMemory(pair.off.pid));
        readings.on.push(readMemory(pair.on.pid));
      }
      const mid = (list: ReturnType<typeof readMemory>[]) => ({ ...list[0]!, rss: median(list.map((m) => m.rss)), anon: median(list.map((m) => m.anon)) });
      const sample = { load: label, run, off: mid(readings.off), on: mid(readings.on) };
      rss.push(sample);
      log(
        `RSS ${label} run ${run}: off ${fmtMiBn(sample.off.rss)} MiB (anon ${fmtMiBn(sample.off.anon)}), on ${fmtMiBn(sample.on.rss)} MiB (anon ${fmtMiBn(sample.on.anon)})`,
      );
      await Promise.all(agents.splice(0).map((a) => a.stop()));
    }
  }
  results.rss = rss.map((s) => ({ load: s.load, run: s.run, off: { rss: s.off.rss, anon: s.off.anon }, on: { rss: s.on.rss, anon: s.on.anon } }));

  // The report.
  const stats = (ms: number[]) => {
    const s = [...ms].sort((a, b) => a - b);
    return { n: s.length, p50: s[Math.floor(s.length / 2)]!, max: s.at(-1)! };
  };
  const secs = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 1000).toFixed(2)} s`);
  let out = `${commandLine}\nload average at start: ${load} (started ${startedAt.toISOString()}, took ${Math.round((Date.now() - startedAt.getTime()) / 1000)} s)\n\n`;
  out += 'Publish → retained report at the operator\n\n';
  out += table([
    ['what', 'outcome', 'n', 'p50', 'max'],
    ...timings.map((t) => {
      const s = stats(t.ms);
      return [t.what, t.outcome, String(s.n), secs(s.p50), secs(s.max)];
    }),
    ...perRun.map((r, i) => [
      `${agentCount} devices: group config, run ${i + 1}`,
      Object.entries(r.outcomes)
        .map(([k, n]) => `${n} ${k}`)
        .join(', '),
      String(agentCount),
      secs(r.p50),
      secs(r.max),
    ]),
  ]);
  out += `\n\n${agentCount} agents started at once: all online after ${secs(onlineMs)}\n\n`;
  out += `RSS after ${settleS} s (median of 5 readings 1 s apart), MiB: fleet.enabled false vs true, started together (pair by pair)\n\n`;
  const rows = [['load', 'run', 'VmRSS off', 'VmRSS on', 'Δ', 'RssAnon off', 'RssAnon on', 'Δ']];
  const loads = [...new Set(rss.map((s) => s.load))];
  for (const l of loads) {
    const these = rss.filter((s) => s.load === l);
    for (const s of these)
      rows.push([
        l,
        String(s.run),
        fmtMiBn(s.off.rss),
        fmtMiBn(s.on.rss),
        fmtMiBn(s.on.rss - s.off.rss),
        fmtMiBn(s.off.anon),
        fmtMiBn(s.on.anon),
        fmtMiBn(s.on.anon - s.off.anon),
      ]);
    const m = (f: (s: (typeof these)[number]) => number) => fmtMiBn(median(these.map(f)));
    const range = (f: (s: (typeof these)[number]) => number) => `${fmtMiBn(Math.min(...these.map(f)))}…${fmtMiBn(Math.max(...these.map(f)))}`;
    rows.push([
      l,
      'median (min…max)',
      `${m((s) => s.off.rss)} (${range((s) => s.off.rss)})`,
      `${m((s) => s.on.rss)} (${range((s) => s.on.rss)})`,
      `${m((s) => s.on.rss - s.off.rss)} (${range((s) => s.on.rss - s.off.rss)})`,
      `${m((s) => s.off.anon)} (${range((s) => s.off.anon)})`,
      `${m((s) => s.on.anon)} (${range((s) => s.on.anon)})`,
      `${m((s) => s.on.anon - s.off.anon)} (${range((s) => s.on.anon - s.off.anon)})`,
    ]);
  }
  out += `${table(rows)}\n`;
  process.stdout.write(out);
  results.timings = timings.map((t) => ({ what: t.what, outcome: t.outcome, ...stats(t.ms), ms: t.ms.map(Math.round) }));
  const json = args.get('json');
  if (json) writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
} finally {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await operator.close();
  await centre.endAsync(true);
  await broker.stop();
  for (const dir of [...dirs, broker.dir]) rmSync(dir, { recursive: true, force: true });
}
