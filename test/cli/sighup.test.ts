import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
