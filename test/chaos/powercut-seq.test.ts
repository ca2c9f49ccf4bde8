import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PowerCutMount } from '../../scripts/chaos/fuse-mount.ts';
import { powerCutTestOptions, requirePowerCut } from '../helpers/powercut.ts';

const CHILD = join(import.meta.dirname, 'seq-child.ts');
const CUTS = Number(process.env.EDGE_POWERCUTS_SEQ ?? 8);

// synchronous=normal: a power cut rolls the queue back by up to the sync interval, by design, and the
// source re-reads from the cursor that survived. What must never happen is a batch sequence going out
// twice with different records: the centre keeps the first and drops the second as a duplicate, and the
// records of the second are lost although the source re-read them. Batches are cut differently after each
// rollback (random group sizes), so a reused sequence would carry different records.
test(`synchronous=normal: across ${CUTS} power cuts no batch sequence goes out twice with different records`, powerCutTestOptions(), async () => {
  requirePowerCut();
  const dir = mkdtempSync(join(tmpdir(), 'powercut-seq-'));
  const backing = join(dir, 'backing');
  const mnt = join(dir, 'mnt');
  mkdirSync(backing);
  mkdirSync(mnt);
  const centre = new Map<number, string>(); // seq → "first-last" the centre took
  let conflicts = 0;
  let lostRows = 0;
  let rolledBack = 0;
  let resent = 0;
  let highest = 0; // the highest record the centre saw
  try {
    for (let cut = 0; cut < CUTS; cut++) {
      const mount = await PowerCutMount.mount(backing, mnt);
      try {
        const child = spawn(process.execPath, [CHILD, join(mnt, 'queue.db')], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
        // Cut after a random number of batches, spread over more than one sync interval.
        const after = 50 + Math.floor(Math.random() * 400);
        let batches = 0;
        let opened = -1;
        await new Promise<void>((resolve, reject) => {
          const deadline = setTimeout(() => reject(new Error(`cut ${cut}: ${batches} of ${after} batches in 120 s; stderr: ${stderr}`)), 120_000);
          void exited.then(() => {
            clearTimeout(deadline);
            reject(new Error(`cut ${cut}: child exited; stderr: ${stderr}`));
          });
          createInterface({ input: child.stdout }).on('line', (line) => {
            const [kind, a, b, c] = line.split(' ');
            if (kind === 'O') {
              opened = Number(a);
              if (opened < highest) rolledBack++;
              return;
            }
            const seq = Number(a);
            const range = `${b}-${c}`;
            const known = centre.get(seq);
            if (known === undefined) centre.set(seq, range);
            else if (known !== range) {
              conflicts++;
              lostRows += Number(c) - Number(b) + 1;
            } else resent++;
            highest = Math.max(highest, Number(c));
            if (++batches >= after) {
              clearTimeout(deadline);
              resolve();
            }
          });
        });
        await mount.cut();
        child.kill('SIGKILL');
        await exited;
      } finally {
        await mount.unmount().catch(() => mount.forceUnmount());
      }
    }
    process.stdout.write(
      `# ${CUTS} cuts, ${centre.size} batches taken by the centre, ${resent} re-sent as true duplicates, ${rolledBack} restarts behind what the centre had, ${conflicts} sequences reused with other records (${lostRows} rows lost)\n`,
    );
    assert.equal(conflicts, 0, `no sequence reused with other records (${lostRows} rows would be lost at the centre)`);
    assert.ok(centre.size > CUTS * 50, 'batches flowed');
    assert.ok(rolledBack > 0, 'the cuts did roll the queue back (else this proved nothing)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
