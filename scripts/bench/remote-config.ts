/**
 * The desired-config pipeline's figures on one device: time from offer to committed (a changed source, a
 * changed sink, a whole restart), and from a bad config to rolled back (a sink that cannot connect, a broker
 * that never acknowledges the canary) with a given health deadline. The agent runs in process with a
 * synthetic source at 200 records/s, on a Mosquitto of its own (mosquitto on PATH) and a FAKE broker that
 * takes connections and never acknowledges. Prints a table and one JSON line.
 *
 *   node scripts/bench/remote-config.ts [--runs 5] [--deadline 5s]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { parseConfig } from '../../agent/app.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { writeKeyPair } from '../../agent/keys/keys.ts';
import { silentLogger } from '../../agent/log.ts';
import { startWithRemoteConfig } from '../../agent/remote/config-start.ts';
import { startMosquitto } from '../lib/mosquitto.ts';
import { freePort } from '../lib/ports.ts';
import { numberArg, parseArgs } from './proc.ts';

const args = parseArgs(process.argv.slice(2));
const runs = numberArg(args, 'runs', 5);
const deadline = args.get('deadline') ?? '5s';

/** A FAKE broker: CONNACK to every CONNECT (MQTT 5), PINGRESP to PINGREQ, nothing to PUBLISH. */
async function silentBroker(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (p) => {
      if (p.cmd === 'connect')
        socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false }, { protocolVersion: 5 }));
      else if (p.cmd === 'pingreq') socket.write(mqttPacket.generate({ cmd: 'pingresp' }, { protocolVersion: 5 }));
    });
    parser.on('error', () => socket.destroy());
    socket.on('data', (d) => parser.parse(d));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'edge-remote-bench-'));
writeKeyPair(x25519, join(dir, 'keys', 'device'));
writeKeyPair(x25519, join(dir, 'keys', 'centre'));
const broker = await startMosquitto();
const silent = await silentBroker();
const unreachable = `mqtt://127.0.0.1:${await freePort()}`;
const yaml = `device: { id: gw-bench }
data_dir: data
log: { level: warn }
keys: { device_private: keys/device.key, centre_public: keys/centre.pub }
sources:
  - { type: synthetic, name: gen, rate: 200, batch: 20 }
sink: { type: mqtt, url: ${broker.url}, reconnect: { initial_delay: 50ms, max_delay: 500ms } }
queue: { commit_interval: 50ms }
`;
writeFileSync(join(dir, 'agent.yaml'), yaml);
const local = parseConfig(yaml, join(dir, 'agent.yaml'), dir);
const { agent, pipeline } = await startWithRemoteConfig(local, silentLogger, { localPath: join(dir, 'agent.yaml') });
// A subscriber makes the broker keep what the agent publishes (MQTT 5 answers 0x10 to a topic nobody reads).
const { default: mqtt } = await import('mqtt');
const sub = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'bench-sub' });
await sub.subscribeAsync('edge-agent/#', { qos: 1 });

let version = 0;
/** The device document last committed: each variant changes one thing on top of it. */
let committed: Record<string, unknown> = {};
const sink = (url: string) => ({ type: 'mqtt', url, reconnect: { initial_delay: '50ms', max_delay: '500ms' } });
const variants: Record<string, (i: number) => Record<string, unknown>> = {
  'source changed': (i) => ({ sources: [{ type: 'synthetic', name: 'gen', rate: 200 + i, batch: 20 }] }),
  'sink changed': (i) => ({ sink: { ...sink(broker.url), client_id: `bench-${i}` } }),
  'whole restart': (i) => ({ queue: { commit_interval: `${50 + i}ms` } }),
  'bad: sink cannot connect': () => ({ sink: sink(unreachable), fleet: { health_deadline: deadline } }),
  'bad: canary never acknowledged': () => ({ sink: sink(silent.url), fleet: { health_deadline: deadline } }),
};
const results: Record<string, { outcome: string; ms: number[] }> = {};
for (const [name, make] of Object.entries(variants)) {
  results[name] = { outcome: '', ms: [] };
  for (let i = 0; i < runs; i++) {
    version++;
    const config = { ...committed, ...make(version) };
    const started = performance.now();
    const report = await pipeline.offer({ kind: 'device' }, { version, config, raw: JSON.stringify({ version, config }) });
    results[name].ms.push(performance.now() - started);
    if (report.outcome === 'committed') committed = config;
    results[name].outcome = `${report.outcome}${report.reason ? ` (${report.reason})` : ''}`;
  }
}
await sub.endAsync();
await agent.stop();
await silent.close();
await broker.stop();
rmSync(dir, { recursive: true, force: true });

const stats = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  return { p50: Math.round(s[Math.floor(s.length / 2)]!), max: Math.round(s.at(-1)!) };
};
process.stdout.write(`offer → outcome, one device, ${runs} runs each (health deadline for bad configs: ${deadline})\n`);
for (const [name, r] of Object.entries(results)) {
  const { p50, max } = stats(r.ms);
  process.stdout.write(`  ${name.padEnd(32)} ${r.outcome.padEnd(30)} p50 ${String(p50).padStart(6)} ms   max ${String(max).padStart(6)} ms\n`);
}
process.stdout.write(
  `${JSON.stringify({ deadline, runs, results: Object.fromEntries(Object.entries(results).map(([k, r]) => [k, { outcome: r.outcome, ...stats(r.ms) }])) })}\n`,
);
