import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger } from '../../agent/log.ts';

// The log format as a person and as a collector see it: `run` in a child process, on a pseudo-terminal
// (util-linux `script`) and on a pipe. A sink nobody listens on keeps the agent running and logging.
const ROOT = resolve(import.meta.dirname, '../..');
/** The running Node 24 itself: signals then reach the agent, not a launcher in between. */
const NODE = process.execPath;
const MAIN = join(ROOT, 'agent/cli/main.ts');
/** A text line: local ISO time with its offset (TZ is set to India's +05:30 below), the level's name, where, the message. */
const TEXT_STARTED = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30 INFO {2}\[source\/gen\] source started restarts=0\r?$/m;

function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-agent-log-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, extra = ''): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `device:\n  id: gw-log\ndata_dir: data-${name}\nkeys:\n  device_private: keys-${name}/device.key\n  centre_public: keys-${name}/centre.pub\n  generate_if_missing: true\n` +
      `sources:\n  - { type: synthetic, name: gen, rate: 0, count: 3 }\nsink:\n  type: mqtt\n  url: mqtt://127.0.0.1:1\n${extra}`,
  );
  return file;
}

/**
 * The sink's first failed connection: logged from an I/O callback, so after `run` has installed its signal
 * handlers ('agent running' is logged before that, and a SIGTERM then would kill it outright).
 */
const STARTED = /mqtt error/;

/**
 * Starts `command args`, waits until its output (stdout of `script`, or stderr) shows `until`, stops it with
 * SIGTERM and returns what it wrote and its exit code.
 */
function runUntil(command: string, args: string[], until: RegExp, read: 'stdout' | 'stderr'): Promise<{ code: number | null; output: string }> {
  const child = spawn(command, args, { cwd: dir, env: { ...process.env, TZ: 'Asia/Kolkata' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  let stopping = false;
  child[read].on('data', (d: Buffer) => {
    output += d;
    if (!stopping && until.test(output)) stopping = child.kill('SIGTERM');
  });
  return new Promise((done) =>
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, output: signal ? `${output}(killed by ${signal})` : output });
    }),
  );
}

describe('log format', () => {
  it('on a terminal: text lines with local ISO time and offset, level name, component, message, fields', { skip: !hasScript() && 'no script(1)' }, async () => {
    const file = config('tty');
    // script -e: its exit status is the command's; -f: output as it comes; the log file is thrown away.
    const r = await runUntil('script', ['-qfec', `${NODE} ${MAIN} run --config ${file}`, '/dev/null'], STARTED, 'stdout');
    assert.match(r.output, TEXT_STARTED);
    assert.match(r.output, /^\S+ INFO {2}agent running device=gw-log sources=1 sink=mqtt queue=\S+queue\.db\r?$/m);
    assert.doesNotMatch(r.output, /"level"/, 'no JSON on a terminal');
  });

  it('on a pipe: JSON lines with the level by name and an ISO time', async () => {
    const r = await runUntil(NODE, [MAIN, 'run', '--config', config('pipe')], STARTED, 'stderr');
    assert.equal(r.code, 0, r.output);
    const lines = r.output.trim().split('\n');
    for (const line of lines) {
      const entry = JSON.parse(line) as { level: string; time: string; msg: string };
      assert.match(entry.level, /^(info|warn)$/);
      assert.match(entry.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    assert.ok(
      lines.some((line) => line.includes('"msg":"stopped"')),
      'the stop is logged',
    );
  });

  it('--log-format text on a pipe gives text lines', async () => {
    const r = await runUntil(NODE, [MAIN, 'run', '--config', config('flag'), '--log-format', 'text'], STARTED, 'stderr');
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, TEXT_STARTED);
    assert.match(r.output, /^\S+ INFO {2}stopping signal=SIGTERM$/m);
  });

  it('log.format: text in the config gives text lines; --log-format json overrides it', async () => {
    const file = config('conf', 'log:\n  format: text\n');
    const text = await runUntil(NODE, [MAIN, 'run', '--config', file], STARTED, 'stderr');
    assert.match(text.output, TEXT_STARTED);
    const json = await runUntil(NODE, [MAIN, 'run', '--config', file, '--log-format', 'json'], STARTED, 'stderr');
    assert.match(json.output, /^\{"level":"info","time":"[^"]+Z","source":"gen","restarts":0,"msg":"source started"\}$/m);
  });

  it('secrets stay redacted in text lines', () => {
    const out = join(dir, 'redact.log');
    createLogger('info', { format: 'text', destination: out })
      .child({ component: 'sink', type: 'mqtt' })
      .info({ password: 'hunter2', user: 'gw' }, 'connecting');
    const line = readFileSync(out, 'utf8');
    assert.match(line, / INFO {2}\[sink\/mqtt\] connecting password="\[redacted\]" user=gw\n$/);
    assert.doesNotMatch(line, /hunter2/);
  });
});
