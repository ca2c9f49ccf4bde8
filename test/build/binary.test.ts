import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startPtyPair } from '../helpers/socat.ts';
import { builtExecutable } from '../helpers/executable.ts';

// The single executable (scripts/build/build.ts) as an operator runs it. It is rebuilt when any source is
// newer than it: a build takes ≈3 s here, well inside the suite's budget.
const ROOT = resolve(import.meta.dirname, '../..');
const X64 = join(ROOT, 'dist/edge-agent-linux-x64');
const ARM64 = join(ROOT, 'dist/edge-agent-linux-arm64');
const PACKAGE_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
/** The executable writes its native addons here instead of ~/.cache/edge-agent. */
let nativeCache: string;

function run(bin: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((done) => {
    execFile(bin, args, { cwd: dir, timeout: 60_000, env: { ...process.env, EDGE_AGENT_NATIVE_CACHE: nativeCache, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

const RUN_CONFIG = `device:
  id: bin-test-gw
data_dir: data
keys:
  device_private: keys/device.key
  centre_public: keys/centre.pub
  generate_if_missing: true
sources:
  - type: synthetic
    name: load
    rate: 0
    count: 500
    batch: 50
sink:
  type: mqtt
  url: embedded
  protocol_version: 4
broker:
  embedded: true
receiver:
  enabled: true
  private_key: keys/centre.key
  devices:
    - id: bin-test-gw
      public_keys: [keys/device.pub]
  output: records.jsonl
`;

describe('single executable (linux-x64)', { skip: process.arch === 'x64' && process.platform === 'linux' ? false : 'the host is not linux-x64' }, () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'edge-agent-binary-'));
    nativeCache = join(dir, 'native-cache');
    builtExecutable('linux-x64');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--version prints the package.json version', async () => {
    const r = await run(X64, ['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), PACKAGE_VERSION);
  });

  it('keygen --dir writes key pairs, private keys 0600', async () => {
    const r = await run(X64, ['keygen', '--dir', 'keys-gen']);
    assert.equal(r.code, 0, r.stderr);
    for (const name of ['device', 'centre']) {
      assert.equal(statSync(join(dir, 'keys-gen', `${name}.key`)).mode & 0o777, 0o600);
      assert.ok(statSync(join(dir, 'keys-gen', `${name}.pub`)).isFile());
    }
  });

  it('check-config accepts the mqtt sink sample', async () => {
    // The sample names files on its target machine (/etc/edge-agent/…): the file alone is checked here.
    const r = await run(X64, ['check-config', '--schema-only', join(ROOT, 'drivers/sinks/mqtt/sample.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok/);
  });

  it('run: synthetic → SQLite queue → embedded broker → receiver file, heap capped, SIGTERM exits 0', async () => {
    writeFileSync(join(dir, 'run.yaml'), RUN_CONFIG);
    const output = join(dir, 'records.jsonl');
    const child = spawn(X64, ['run', '--config', 'run.yaml'], {
      cwd: dir,
      env: { ...process.env, EDGE_AGENT_NATIVE_CACHE: nativeCache, EDGE_AGENT_HEAP_REPORT: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      const deadline = Date.now() + 60_000;
      let lines = 0;
      while (Date.now() < deadline) {
        lines = existsSync(output) ? readFileSync(output, 'utf8').split('\n').filter(Boolean).length : 0;
        if (lines >= 500) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(lines, 500, `records delivered; stderr:\n${stderr}`);
      const seqs = readFileSync(output, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { record: { n: number } }).record.n);
      assert.deepEqual(
        seqs,
        Array.from({ length: 500 }, (_, i) => i + 1),
      );

      // The default caps are baked into the executable: heap_size_limit ≈ 48 MB old space + young generation.
      const report = /heap_size_limit=(\d+) pid=(\d+)/.exec(stderr);
      assert.ok(report, `heap report on stderr:\n${stderr}`);
      assert.ok(Number(report[1]) <= 56 * 1024 * 1024, `heap_size_limit ${report[1]}`);
      assert.equal(Number(report[2]), child.pid);

      // better-sqlite3's addon was written out of the executable into EDGE_AGENT_NATIVE_CACHE.
      const unpacked = readdirSync(join(nativeCache, 'edge-agent')).flatMap((h) => readdirSync(join(nativeCache, 'edge-agent', h)));
      assert.deepEqual(unpacked, ['better-sqlite3-linux-x64.node']);

      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      // Node's own warnings (a deprecated API called by a bundled library, as MQTT.js's url.parse() once was)
      // land in the journal of every gateway at every start; the log holds only the agent's JSON lines (and the
      // heap report this test asks for with EDGE_AGENT_HEAP_REPORT).
      const notJson = stderr.split('\n').filter((line) => line !== '' && !line.startsWith('{') && !line.startsWith('edge-agent: heap_size_limit='));
      assert.deepEqual(notJson, [], 'nothing but JSON log lines on stderr');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('run: other heap caps restart the executable once, same pid; NODE_OPTIONS caps are honoured', async () => {
    writeFileSync(join(dir, 'caps.yaml'), RUN_CONFIG.replace('data_dir: data', 'data_dir: data-caps').replace('output: records.jsonl', 'output: caps.jsonl'));
    const cases: [Record<string, string>, (limit: number) => boolean][] = [
      [{ EDGE_AGENT_MAX_OLD_SPACE_MB: '64', EDGE_AGENT_MAX_SEMI_SPACE_MB: '4' }, (l) => l > 64 * 1024 * 1024 && l < 90 * 1024 * 1024],
      [{ EDGE_AGENT_MAX_OLD_SPACE_MB: 'off' }, (l) => l > 1024 * 1024 * 1024],
      [{ NODE_OPTIONS: '--max-old-space-size=32' }, (l) => l > 32 * 1024 * 1024 && l < 40 * 1024 * 1024],
    ];
    for (const [env, ok] of cases) {
      const child = spawn(X64, ['run', '--config', 'caps.yaml'], {
        cwd: dir,
        env: { ...process.env, EDGE_AGENT_NATIVE_CACHE: nativeCache, EDGE_AGENT_HEAP_REPORT: '1', ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      const report = new Promise<RegExpExecArray>((done, fail) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /heap_size_limit=(\d+) pid=(\d+)/.exec(stderr);
          if (m) done(m);
        });
        child.once('exit', (code) => fail(new Error(`exited ${code}: ${stderr}`)));
      });
      try {
        const m = await report;
        assert.ok(ok(Number(m[1])), `${JSON.stringify(env)}: heap_size_limit ${m[1]}`);
        assert.equal(Number(m[2]), child.pid);
        assert.equal(stderr.match(/heap_size_limit=/g)?.length, 1, 'one report: the first start does not report');
      } finally {
        child.kill('SIGKILL');
      }
    }
  });

  it('run: a serial source on a real pseudo-terminal works inside the executable (its native binding is packed)', async () => {
    const pty = await startPtyPair(dir, 'bin-tty');
    const output = join(dir, 'serial.jsonl');
    writeFileSync(
      join(dir, 'serial.yaml'),
      RUN_CONFIG.replace(/sources:[\s\S]*?sink:/, `sources:\n  - { type: serial, name: tty, path: ${pty.device}, framing: { mode: json_lines } }\nsink:`)
        .replace('data_dir: data', 'data_dir: data-serial')
        .replace('output: records.jsonl', `output: ${output}`),
    );
    const child = spawn(X64, ['run', '--config', 'serial.yaml'], {
      cwd: dir,
      env: { ...process.env, EDGE_AGENT_NATIVE_CACHE: nativeCache },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const started = new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('"msg":"source started"')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      await started;
      // The line before the first delimiter after opening counts as partial: a leading newline keeps all 20.
      await pty.write(`\n${Array.from({ length: 20 }, (_, i) => JSON.stringify({ i: i + 1, temp: 21.5 })).join('\n')}\n`);
      const deadline = Date.now() + 30_000;
      let lines: string[] = [];
      while (Date.now() < deadline && lines.length < 20) {
        lines = existsSync(output) ? readFileSync(output, 'utf8').split('\n').filter(Boolean) : [];
        if (lines.length < 20) await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(
        lines.map((l) => (JSON.parse(l) as { record: { i: number } }).record.i),
        Array.from({ length: 20 }, (_, i) => i + 1),
        stderr,
      );
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
    } finally {
      child.kill('SIGKILL');
      await pty.stop();
    }
  });

  it('linux-arm64 executable --version under qemu-user', async (t) => {
    const qemu = which('qemu-aarch64') ?? which('qemu-aarch64-static');
    // The executable is dynamically linked against glibc and libstdc++: qemu needs an aarch64 sysroot.
    const sysroot = process.env.QEMU_LD_PREFIX ?? (existsSync('/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1') ? '/usr/aarch64-linux-gnu' : undefined);
    if (!qemu) return t.skip('qemu-aarch64 not installed (apt-get install qemu-user; .ci/run does)');
    if (!sysroot) return t.skip('no aarch64 sysroot for qemu (apt-get install libc6-arm64-cross libstdc++6-arm64-cross, or set QEMU_LD_PREFIX)');
    // Where the arm64 executable can be run, build it when it is missing or stale (a few seconds).
    builtExecutable('linux-arm64');
    const r = await run(qemu, ['-L', sysroot, ARM64, '--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), PACKAGE_VERSION);
  });
});
