/**
 * Anonymous memory of the agent at a steady load (issue 11), as a gateway runs it: the shipped executable (or,
 * with `--tree`, the source tree under the same heap caps) alone, a synthetic source of realistic records
 * (`--record-bytes`, default 120: a timestamp per record, noisy floats, 400 sensor ids) at `--rate` records/s
 * (0: as fast as it goes) into the MQTT sink; the broker (a Mosquitto of the script's own) and the centre (the
 * `receive` command, counting what arrives) are separate processes, as they are outside a gateway.
 * MALLOC_ARENA_MAX=1 is in the agent's environment, as the systemd unit `edge-agent install` writes sets it
 * (`--arenas default` leaves glibc's default), and NODE_EXTRA_CA_CERTS is not (`--env` may set it again).
 * Anonymous from /proc/PID/smaps_rollup is sampled every second; the last and highest are printed with the
 * CPU seconds per record. Targets: ≤ 32 MB at 1k rec/s, ≤ 48 MB at full speed. `--all-in-one` measures the
 * earlier setup instead: broker and receiver inside the agent.
 *
 *   node scripts/bench/memory.ts [--rate 1000] [--seconds 60] [--record-bytes 120] [--tree] [--executable PATH]
 *                                [--arenas default] [--all-in-one] [--env NAME=VALUE] [--node-options="FLAGS"]
 *                                [--agent-stdout FILE] [--breakdown]
 *
 * `--node-options` hands the agent (not the broker or the centre) runtime flags, e.g. `--heapsnapshot-signal=SIGUSR2
 * --diagnostic-dir=DIR` to look at its heap while it runs (the executable ignores NODE_OPTIONS); `--agent-stdout`
 * keeps what the agent's runtime prints there (`--trace-gc`). `--breakdown` also reads /proc/PID/smaps at every
 * sample and prints, at the last and the highest, how much was malloc's heap, V8's pages and other mappings.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_HEAP_CAPS, heapCapArgs } from '../../agent/cli/heap-caps.ts';
import { writeGatewayConfigs } from '../lib/gateway-configs.ts';
import { startMosquitto } from '../lib/mosquitto.ts';
import { type AnonymousByMapping, numberArg, parseArgs, readAnonymousByMapping, readCpuSeconds } from './proc.ts';

/** Lines of a file, read in chunks. */
async function countLines(path: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(path)) {
    for (let i = (chunk as Buffer).indexOf(10); i !== -1; i = (chunk as Buffer).indexOf(10, i + 1)) lines++;
  }
  return lines;
}

const ROOT = resolve(import.meta.dirname, '../..');
const MiB = 1024 * 1024;

function anonymousBytes(pid: number): number {
  try {
    const m = /^Anonymous:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const args = parseArgs(process.argv.slice(2));
const rate = numberArg(args, 'rate', 1000);
const seconds = numberArg(args, 'seconds', 60);
const recordBytes = numberArg(args, 'record-bytes', 120);
const tree = args.has('tree');
const allInOne = args.has('all-in-one');
const executable = args.get('executable') ?? join(ROOT, 'dist/edge-agent-linux-x64');
const env: Record<string, string> = args.get('arenas') === 'default' ? {} : { MALLOC_ARENA_MAX: '1' };
const nodeOptions = args.get('node-options');
const breakdown = args.has('breakdown');
const envArg = args.get('env');
if (envArg !== undefined) {
  const [name, ...value] = envArg.split('=');
  env[name!] = value.join('=');
}
if (!tree && !existsSync(executable)) throw new Error(`${executable} is missing: run \`npm run build\` or pass --tree`);

/** The agent's command line: the executable, or the tree under the executable's shipped caps (agent/cli/heap-caps.ts). */
function command(...rest: string[]): string[] {
  return tree ? [process.execPath, ...heapCapArgs(DEFAULT_HEAP_CAPS), join(ROOT, 'agent/cli/main.ts'), ...rest] : [executable, ...rest];
}

/** The agent's command line with runtime flags: the executable takes them as `--node-options`, node directly. */
function agentWithOptions(flags: string): string[] {
  const [first, ...rest] = command('run', '--config', 'run.yaml');
  return tree ? [first!, ...flags.split(' '), ...rest] : [first!, `--node-options=${flags}`, ...rest];
}

/**
 * This shell's environment without NODE_EXTRA_CA_CERTS: a developer's machine may set it, the systemd unit
 * does not, and with it Node parses its bundled root certificates and the extra ones at every start (≈1.7 MB
 * of malloc heap kept, measured with heaptrack) though the agent opens no TLS connection here.
 */
const { NODE_EXTRA_CA_CERTS: _extraCaCerts, ...shellEnv } = process.env;

function start(argv: string[], extraEnv: Record<string, string> = {}, stdout: 'ignore' | number = 'ignore'): ChildProcess {
  return spawn(argv[0]!, argv.slice(1), { cwd: dir, env: { ...shellEnv, ...extraEnv }, stdio: ['ignore', stdout, 'pipe'] });
}

/** Resolves once `child` logged `marker` on stderr; rejects if it exits first. */
function logged(child: ChildProcess, marker: string): Promise<void> {
  return new Promise((ready, failed) => {
    let text = '';
    child.stderr!.on('data', (d: Buffer) => {
      text = (text + d.toString()).slice(-10_000);
      if (text.includes(marker)) ready();
    });
    child.on('exit', (code) => failed(new Error(`${child.spawnargs.join(' ')} exited (${code}):\n${text}`)));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'edge-agent-memory-bench-'));
const source = `{ type: synthetic, name: load, rate: ${rate}, batch: ${rate === 0 ? 500 : 100}, shape: realistic, record_bytes: ${recordBytes} }`;
const broker = allInOne ? undefined : await startMosquitto();
let centre: ChildProcess | undefined;
let agent: ChildProcess | undefined;
try {
  if (broker) {
    const keygen = start(command('keygen', '--dir', 'keys'));
    await new Promise((done) => keygen.on('exit', done));
    writeGatewayConfigs(dir, { brokerUrl: broker.url, deviceId: 'bench-gw', centreClientId: 'bench-centre', source });
    centre = start(command('receive', '--config', 'centre.yaml'));
    await logged(centre, 'receiver running');
  } else {
    writeFileSync(
      join(dir, 'run.yaml'),
      `device: { id: bench-gw }
data_dir: data
keys: { device_private: keys/device.key, centre_public: keys/centre.pub, generate_if_missing: true }
sources:
  - ${source}
sink: { type: mqtt, url: embedded, protocol_version: 4 }
broker: { embedded: true }
receiver:
  enabled: true
  private_key: keys/centre.key
  devices: [{ id: bench-gw, public_keys: [keys/device.pub] }]
  output: records.jsonl
`,
    );
  }
  const agentStdout = args.get('agent-stdout');
  agent = start(
    nodeOptions === undefined ? command('run', '--config', 'run.yaml') : agentWithOptions(nodeOptions),
    env,
    agentStdout === undefined ? 'ignore' : openSync(agentStdout, 'w'),
  );
  const running = logged(agent, 'agent running');
  const died = new Promise<never>((_, failed) => running.catch(failed));
  await Promise.race([running, died]);
  const pid = agent.pid!;
  let peak = 0;
  let last = 0;
  let peakParts: AnonymousByMapping | undefined;
  let lastParts: AnonymousByMapping | undefined;
  for (let s = 0; s < seconds; s++) {
    await new Promise((r) => setTimeout(r, 1000));
    if (agent.exitCode !== null || agent.signalCode !== null) throw new Error(`the agent exited (${agent.exitCode ?? agent.signalCode})`);
    last = anonymousBytes(pid);
    if (breakdown) lastParts = readAnonymousByMapping(pid);
    if (last > peak) {
      peak = last;
      peakParts = lastParts;
    }
  }
  const cpu = readCpuSeconds(pid);
  agent.kill('SIGTERM');
  await new Promise((r) => agent!.on('exit', r));
  const output = join(dir, 'records.jsonl');
  // Counted in chunks: at full speed the file outgrows the longest string V8 makes (≈ 512 MiB in a minute).
  const records = existsSync(output) ? await countLines(output) : 0;
  const target = rate === 0 ? 48 : 32;
  const setup = `${tree ? 'tree' : 'executable'}${allInOne ? ' all-in-one' : ''} ${recordBytes} B rate=${rate || 'full'} ${seconds} s${
    Object.keys(env).length
      ? ` ${Object.entries(env)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`
      : ''
  }`;
  process.stdout.write(
    `${setup}: anonymous last ${(last / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB (target ≤ ${target} MB); ${records} records delivered, ${records > 0 ? ((cpu / records) * 1e6).toFixed(1) : '?'} CPU µs/record\n`,
  );
  const parts = (p: AnonymousByMapping | undefined) =>
    p ? `malloc heap ${(p.mallocHeap / MiB).toFixed(1)}, V8 pages ${(p.v8Pages / MiB).toFixed(1)}, other ${(p.other / MiB).toFixed(1)} MiB` : '';
  if (breakdown) process.stdout.write(`  last: ${parts(lastParts)}\n  peak: ${parts(peakParts)}\n`);
} finally {
  agent?.kill('SIGKILL');
  centre?.kill('SIGKILL');
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
}
