import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeGatewayConfigs } from '../../scripts/lib/gateway-configs.ts';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { builtExecutable } from '../helpers/executable.ts';

// The shipped executable as a gateway runs it, inside a real 64 MiB memory cgroup (v1: memory.limit_in_bytes,
// and memory.memsw.limit_in_bytes so swap is no way out), as `MemoryMax=64M` would hold it under systemd:
// a synthetic source of realistic 120 B records at 1,000 a second into the MQTT sink, for several minutes.
// The broker (a Mosquitto of the test's own) and the centre (the same executable's `receive`) run outside the
// cgroup, as they do outside a gateway. The kernel must not kill the agent and the centre must write every
// record. A control process that allocates 128 MiB in the same kind of cgroup is killed first, so the limit is
// known to bite. MALLOC_ARENA_MAX=1 is in the agent's environment because the unit `edge-agent install`
// writes sets it (agent/update/unit.ts).
const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const X64 = join(ROOT, 'dist/edge-agent-linux-x64');
const LIMIT = 64 * 1024 * 1024;
const RATE = 1_000;
/** How long the load runs (EDGE_AGENT_CGROUP_SECONDS changes it): several minutes, as the issue asks. */
const SECONDS = Number(process.env.EDGE_AGENT_CGROUP_SECONDS ?? 180);

/** Our own memory cgroup (v1), where children may be made; undefined with the reason when there is none. */
function ownMemoryCgroup(): { path?: string; why?: string } {
  const root = '/sys/fs/cgroup/memory';
  if (!existsSync(join(root, 'cgroup.procs'))) return { why: `${root} is not a cgroup v1 memory hierarchy` };
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => /^\d+:memory:/.test(l));
  if (!line) return { why: 'this process is in no memory cgroup' };
  return { path: join(root, line.slice(line.indexOf(':memory:') + ':memory:'.length)) };
}

let base: string | undefined;
let dir: string;
const made: string[] = [];

/** A child cgroup limited to LIMIT (memory and memory+swap). */
function makeCgroup(name: string): string {
  const path = join(base!, `edge-agent-test-${process.pid}-${name}`);
  mkdirSync(path);
  made.push(path);
  writeFileSync(join(path, 'memory.limit_in_bytes'), String(LIMIT));
  if (existsSync(join(path, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(path, 'memory.memsw.limit_in_bytes'), String(LIMIT));
  return path;
}

/** Starts `argv` inside `cgroup`: a shell moves itself in, then execs (same pid, so the program is inside from its first byte). */
function spawnIn(cgroup: string, argv: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn('sh', ['-c', `echo $$ > "$0/cgroup.procs" && exec "$@"`, cgroup, ...argv], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/** Anonymous memory charged to the cgroup now (memory.stat `rss`: what the kernel counts against the limit besides the page cache). */
function anonymousBytes(cgroup: string): number {
  const m = /^rss (\d+)$/m.exec(readFileSync(join(cgroup, 'memory.stat'), 'utf8'));
  return m ? Number(m[1]) : 0;
}

function oomKills(cgroup: string): number {
  const m = /oom_kill (\d+)/.exec(readFileSync(join(cgroup, 'memory.oom_control'), 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function distinctNs(path: string): Promise<number> {
  if (!existsSync(path)) return 0;
  const seen = new Set<number>();
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of rl) {
    const m = /"record":\{"n":(\d+)/.exec(line);
    if (m) seen.add(Number(m[1]));
  }
  return seen.size;
}

const cgroup = ownMemoryCgroup();

describe('the executable in a 64 MiB memory cgroup', { skip: cgroup.path ? false : `no usable memory cgroup: ${cgroup.why}` }, () => {
  before(() => {
    base = cgroup.path;
    dir = mkdtempSync(join(tmpdir(), 'edge-agent-cgroup-'));
    builtExecutable('linux-x64');
  });
  after(() => {
    for (const path of made.reverse()) {
      try {
        rmdirSync(path);
      } catch {
        // A cgroup with a process left in it cannot be removed; the process was SIGKILLed, so this is rare.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('the limit bites: a process allocating 128 MiB in it is killed by the kernel', async () => {
    const group = makeCgroup('control');
    const child = spawnIn(group, [NODE, '-e', 'const a=[];for(let i=0;i<128;i++)a.push(Buffer.alloc(1<<20,1));setTimeout(()=>{},60000)']);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) => child.on('exit', (c, s) => done([c, s])));
    assert.equal(signal, 'SIGKILL', `exit code ${code}`);
    assert.ok(oomKills(group) >= 1, 'the cgroup counted an OOM kill');
  });

  it(`1,000 records/s for ${SECONDS} s: no OOM kill, every record delivered`, { timeout: (SECONDS + 240) * 1000 }, async () => {
    const group = makeCgroup('agent');
    const count = RATE * SECONDS;
    const broker = await startMosquitto();
    execFileSync(X64, ['keygen', '--dir', 'keys'], { cwd: dir, stdio: 'ignore' });
    writeGatewayConfigs(dir, {
      brokerUrl: broker.url,
      deviceId: 'cgroup-gw',
      centreClientId: 'cgroup-centre',
      source: `{ type: synthetic, name: load, rate: ${RATE}, count: ${count}, batch: 100, shape: realistic, record_bytes: 120 }`,
    });
    // The centre subscribes before the gateway publishes (MQTT keeps nothing for a topic nobody subscribed to).
    const centre = spawn(X64, ['receive', '--config', 'centre.yaml'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    const centreExited = new Promise<void>((done) => centre.on('exit', () => done()));
    let centreLog = '';
    await new Promise<void>((ready, failed) => {
      centre.stderr!.on('data', (d: Buffer) => {
        centreLog = (centreLog + d.toString()).slice(-20_000);
        if (centreLog.includes('receiver running')) ready();
      });
      centre.on('exit', (code) => failed(new Error(`the centre exited (${code}):\n${centreLog}`)));
    });
    const child = spawnIn(group, [X64, 'run', '--config', 'run.yaml'], { MALLOC_ARENA_MAX: '1', EDGE_AGENT_NATIVE_CACHE: join(dir, 'native-cache') });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-20_000);
    });
    let exit: string | undefined;
    const exited = new Promise<void>((done) =>
      child.on('exit', (code, signal) => {
        exit = `code ${code}, signal ${signal}`;
        done();
      }),
    );
    const output = join(dir, 'records.jsonl');
    let peak = 0;
    let peakAnonymous = 0;
    try {
      const deadline = Date.now() + (SECONDS + 180) * 1000;
      let delivered = 0;
      let lastSize = -1;
      while (Date.now() < deadline && exit === undefined) {
        peak = Math.max(peak, Number(readFileSync(join(group, 'memory.max_usage_in_bytes'), 'utf8')));
        peakAnonymous = Math.max(peakAnonymous, anonymousBytes(group));
        const size = existsSync(output) ? statSync(output).size : 0;
        if (size !== lastSize) {
          lastSize = size;
          delivered = await distinctNs(output);
          if (delivered >= count) break;
        }
        await new Promise((r) => setTimeout(r, 1_000));
      }
      assert.equal(exit, undefined, `the executable exited (${exit}); OOM kills in its cgroup: ${oomKills(group)}; stderr:\n${stderr}`);
      assert.equal(oomKills(group), 0, 'no OOM kill');
      assert.equal(delivered, count, `records delivered; agent stderr:\n${stderr}\ncentre stderr:\n${centreLog}`);
      process.stdout.write(
        `# ${count} records at ${RATE}/s delivered from a ${LIMIT / 1048576} MiB cgroup; peak usage (page cache included) ${(peak / 1048576).toFixed(1)} MiB, peak anonymous ${(peakAnonymous / 1048576).toFixed(1)} MiB\n`,
      );
      child.kill('SIGTERM');
      await exited;
    } finally {
      child.kill('SIGKILL');
      centre.kill('SIGKILL');
      await Promise.race([Promise.all([exited, centreExited]), new Promise((r) => setTimeout(r, 5_000))]);
      await broker.stop();
    }
  });
});
