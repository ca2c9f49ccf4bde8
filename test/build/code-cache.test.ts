import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtExecutable } from '../helpers/executable.ts';
import { plainGatewayYaml } from '../../scripts/lib/gateway-configs.ts';
import { runUntilAgentRunning } from '../../scripts/lib/run-until-running.ts';

// The executable's main script is a loader (agent/util/packed-main.ts) that compiles the application with
// the V8 code cache the build made from a real start of the same executable (scripts/build/code-cache.ts).
// NODE_DEBUG=edge-agent-start makes it say whether V8 accepted the cache. An executable whose cache V8
// rejects still starts, compiling from source as every start did before.

const CONFIG = plainGatewayYaml('cache-test-gw', 'mqtt://127.0.0.1:1');

const ACCEPTED = /EDGE-AGENT-START \d+: code cache accepted \((\d+) bytes, [\d.]+ ms\)/;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;

function run(cmd: string, args: string[]): Promise<Result> {
  return new Promise((done) => {
    execFile(
      cmd,
      args,
      { cwd: dir, timeout: 120_000, env: { ...process.env, NODE_OPTIONS: '', NODE_DEBUG: 'edge-agent-start', EDGE_AGENT_NATIVE_CACHE: join(dir, 'native') } },
      (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

describe('code cache of the executable', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'edge-agent-code-cache-'));
    writeFileSync(join(dir, 'run.yaml'), CONFIG);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const x64 = process.arch === 'x64' && process.platform === 'linux' ? false : 'the host is not linux-x64';

  it('--version: V8 accepts the cache the build made', { skip: x64 }, async () => {
    const r = await run(builtExecutable('linux-x64'), ['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, ACCEPTED);
  });

  it('run reaches "agent running" from the cache and stops on SIGINT', { skip: x64 }, async () => {
    // Killed if it never logs "agent running", so a hung start fails the test instead of holding the run.
    const r = await runUntilAgentRunning([builtExecutable('linux-x64'), 'run', '--config', 'run.yaml'], {
      cwd: dir,
      env: { ...process.env, NODE_OPTIONS: '', NODE_DEBUG: 'edge-agent-start', EDGE_AGENT_NATIVE_CACHE: join(dir, 'native') },
      timeoutMs: 120_000,
    });
    assert.ok(r.stopped, r.output);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, ACCEPTED);
  });

  it('a cache V8 rejects (other V8 flags): the executable still starts, and says so', { skip: x64 }, async () => {
    // --no-opt changes V8's flag hash, which a cache must match; heap-size flags do not (the re-exec for
    // other heap caps keeps the cache: agent/cli/bin.ts).
    const rejected = await run(builtExecutable('linux-x64'), ['--node-options=--no-opt', '--version']);
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.match(rejected.stdout, /^\d+\.\d+\.\d+/);
    assert.match(rejected.stderr, /code cache rejected \(\d+ bytes\): compiling from source \([\d.]+ ms\)/);
    const heapCaps = await run(builtExecutable('linux-x64'), ['--node-options=--max-old-space-size=64 --max-semi-space-size=2', '--version']);
    assert.match(heapCaps.stderr, ACCEPTED);
  });

  it('linux-arm64 under qemu-user: V8 accepts the cache the build made under qemu', async (t) => {
    const qemu = which('qemu-aarch64') ?? which('qemu-aarch64-static');
    const sysroot = process.env.QEMU_LD_PREFIX ?? (existsSync('/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1') ? '/usr/aarch64-linux-gnu' : undefined);
    if (!qemu) return t.skip('qemu-aarch64 not installed (apt-get install qemu-user; .ci/run does)');
    if (!sysroot) return t.skip('no aarch64 sysroot for qemu (apt-get install libc6-arm64-cross libstdc++6-arm64-cross, or set QEMU_LD_PREFIX)');
    const r = await run(qemu, ['-L', sysroot, builtExecutable('linux-arm64'), '--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, ACCEPTED);
  });
});
