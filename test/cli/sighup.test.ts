import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, renameSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';

// SIGHUP (a closed terminal, a service manager's reload) must not kill the agent: a real `run` process gets
// one, reloads its unchanged file (outcome `unchanged`), keeps running, and later stops on SIGTERM with its
// queue marked as cleanly closed. test/e2e/config-reload.test.ts reloads changed and bad files.
const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'agent/cli/main.ts');

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-agent-hup-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

it('SIGHUP with an unchanged file changes nothing; SIGTERM then stops the agent cleanly', async () => {
  const file = join(dir, 'agent.yaml');
  writeFileSync(
    file,
    'device:\n  id: gw-hup\ndata_dir: data\nkeys:\n  device_private: keys/device.key\n  centre_public: keys/centre.pub\n  generate_if_missing: true\n' +
      'sources:\n  - { type: synthetic, name: gen, rate: 0, count: 3 }\nsink:\n  type: mqtt\n  url: mqtt://127.0.0.1:1\n',
  );
  const child = spawn(process.execPath, [MAIN, 'run', '--config', file, '--log-format', 'json'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  let output = '';
  const steps: string[] = [];
  child.stderr.on('data', (d: Buffer) => {
    output += d;
    // The sink's first failed connection comes after `run` installed its handlers (see log-format.test.ts).
    if (steps.length === 0 && /mqtt error/.test(output)) {
      steps.push('hup');
      child.kill('SIGHUP');
    } else if (steps.length === 1 && /"outcome":"unchanged"/.test(output)) {
      // Still alive after handling it: signal 0 throws for a process that is gone.
      steps.push(process.kill(child.pid!, 0) ? 'alive' : 'gone');
      child.kill('SIGTERM');
    }
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) => child.once('close', (c, s) => done([c, s])));
  clearTimeout(killer);
  assert.deepEqual(steps, ['hup', 'alive'], output);
  assert.deepEqual([code, signal], [0, null], output);
  assert.match(output, /"msg":"stopped"/);
  const db = new Database(join(dir, 'data', 'queue.db'), { readonly: true });
  try {
    assert.equal(db.prepare("SELECT value FROM meta WHERE key = 'clean'").pluck().get(), 1, 'the queue is marked as cleanly closed');
  } finally {
    db.close();
  }
});

/** Whether process `pid` has a handler for SIGHUP (bit 0 of SigCgt), or undefined once it is gone. */
function catchesHangup(pid: number): boolean | undefined {
  try {
    const line = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return line ? (BigInt(`0x${line[1]}`) & 1n) === 1n : false;
  } catch {
    return undefined;
  }
}

it('SIGHUP while `run` starts (before it reads its config) is held, never the end of the process', async () => {
  const config =
    'device:\n  id: gw-hup-start\ndata_dir: data-start\nkeys:\n  device_private: keys/device.key\n  centre_public: keys/centre.pub\n  generate_if_missing: true\n' +
    'sources:\n  - { type: synthetic, name: gen, rate: 0, count: 3 }\nsink:\n  type: mqtt\n  url: mqtt://127.0.0.1:1\n';
  // The config comes through a FIFO: `run` blocks reading it, so a handler seen then was installed before it.
  const file = join(dir, 'start.yaml');
  execFileSync('mkfifo', [file]);
  writeFileSync(join(dir, 'start.yaml.real'), config);
  const child = spawn(process.execPath, [MAIN, 'run', '--config', file, '--log-format', 'json'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  let output = '';
  child.stderr.on('data', (d: Buffer) => (output += d));
  const closed = new Promise<[number | null, NodeJS.Signals | null]>((done) => child.once('close', (c, s) => done([c, s])));
  let sent = 0;
  let hangups: NodeJS.Timeout | undefined;
  try {
    // Node itself starts before any of our code can run; from the first moment a handler is there, SIGHUP
    // every 5 ms until the agent runs.
    const deadline = Date.now() + 30_000;
    while (catchesHangup(child.pid!) !== true) {
      assert.ok(catchesHangup(child.pid!) !== undefined, `the process ended before it held SIGHUP\n${output}`);
      assert.ok(Date.now() < deadline, `no SIGHUP handler while the config was still unread\n${output}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    hangups = setInterval(() => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGHUP');
        sent++;
      }
    }, 5);
    while (sent < 3) await new Promise((r) => setTimeout(r, 5));
    // Now the config: read once, then a regular file at the same path for any reload a late SIGHUP starts.
    await writeFile(file, config);
    renameSync(join(dir, 'start.yaml.real'), file);
    const running = Date.now() + 60_000;
    while (!/"msg":"agent running"/.test(output)) {
      assert.equal(child.signalCode, null, `killed by ${child.signalCode} while starting after ${sent} SIGHUPs\n${output}`);
      assert.equal(child.exitCode, null, `exited while starting\n${output}`);
      assert.ok(Date.now() < running, `never running\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    clearInterval(hangups);
  }
  // The held ones are handled once the event loop turns (counted, ignored, or a reload if the agent is up by then).
  const handled = Date.now() + 30_000;
  while (!/"msg":"SIGHUP received|"cause":"SIGHUP"/.test(output)) {
    assert.equal(child.signalCode, null, `killed by ${child.signalCode} after ${sent} SIGHUPs\n${output}`);
    assert.ok(Date.now() < handled, `no SIGHUP handled after ${sent} sent\n${output}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(process.kill(child.pid!, 0), 'alive after the SIGHUPs');
  child.kill('SIGTERM');
  const [code, signal] = await closed;
  clearTimeout(killer);
  assert.deepEqual([code, signal], [0, null], `after ${sent} SIGHUPs\n${output}`);
});
