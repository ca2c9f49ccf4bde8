import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';

// A real, small tmpfs that really fills up, and real processes killed with SIGKILL. Mounting needs root.
const CHILD = join(import.meta.dirname, 'disk-full-child.ts');
const ROUNDS = Number(process.env.QUEUE_DISK_FULL_ROUNDS ?? 12);
const LINE_DEADLINE_MS = 60_000;
let mnt = '';
let reason: string | undefined;
before(() => {
  mnt = mkdtempSync(join(tmpdir(), 'edge-diskfull-kill-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', mnt], { stdio: 'pipe' });
  } catch (err) {
    reason = `cannot mount a tmpfs (needs root): ${(err as Error).message.split('\n')[0]}`;
    if (process.env.CI) throw new Error(`${reason}; CI must run the disk-full tests`);
    process.stdout.write(`# skipping disk-full kill test: ${reason}\n`);
  }
});
after(() => {
  if (!reason) execFileSync('umount', [mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

/** Takes every byte left on the tmpfs (the queue's own writes race it: full is full either way). */
function fill(filler: string): void {
  const fd = openSync(filler, 'a');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

/** Starts a child and resolves with its lines once `enough` says so (then SIGKILLs it) or it exits. */
async function runChild(mode: 'ingest' | 'drain', path: string, enough: (lines: string[]) => boolean): Promise<string[]> {
  const child = spawn(process.execPath, [CHILD, mode, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(
        () => reject(new Error(`${mode} child: no end within ${LINE_DEADLINE_MS} ms; lines ${lines.slice(-5)}; stderr: ${stderr}`)),
        LINE_DEADLINE_MS,
      );
      void exited.then((code) => {
        clearTimeout(deadline);
        if (code === 0) resolve();
        else reject(new Error(`${mode} child exited with ${code} after ${lines.length} lines (${lines.slice(-3)}); stderr: ${stderr}`));
      });
      createInterface({ input: child.stdout }).on('line', (line) => {
        lines.push(line);
        if (enough(lines)) {
          clearTimeout(deadline);
          resolve();
        }
      });
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
  return lines;
}

// The disk fills and frees at random points while the agent's queue ingests, leases and acknowledges, and
// the process is SIGKILLed at random points. Every restart must open the queue (on a full disk too), the
// queue must drain completely while the disk is still full (acknowledgements always commit), and what it
// holds must add up exactly: every record up to the committed cursor was either delivered once or counted
// as dropped. Afterwards, with space back, it ingests again.
test('disk full at random points with SIGKILLs: the queue always reopens, drains on a full disk, counts exactly', async (t) => {
  if (reason) return t.skip(reason);
  const dir = join(mnt, 'q');
  mkdirSync(dir);
  const path = join(dir, 'queue.db');
  const filler = join(mnt, 'filler');
  let full = false;
  let fullKills = 0;
  let failuresSeen = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // Fill or free the disk before the start (a restart on a full disk) or after a random number of lines.
    // (Not before the very first start: a queue file cannot be created on a full disk.)
    const flipAt = round > 0 && Math.random() < 0.5 ? 0 : 1 + Math.floor(Math.random() * 40);
    const killAt = flipAt + 1 + Math.floor(Math.random() * 60);
    const flip = () => {
      if (full) rmSync(filler, { force: true });
      else fill(filler);
      full = !full;
    };
    if (flipAt === 0) flip();
    let flipped = flipAt === 0;
    const lines = await runChild('ingest', path, (got) => {
      if (!flipped && got.length > flipAt) {
        flipped = true;
        flip();
      }
      return got.length > killAt;
    });
    assert.match(lines[0] ?? '', /^O \d+$/, `round ${round}: the queue opened (disk ${full ? 'full' : 'not full'})`);
    failuresSeen += lines.filter((l) => l === 'F').length;
    if (full) fullKills++;
  }
  if (!full) fill(filler);
  process.stdout.write(`# ${ROUNDS} kills, ${fullKills} with the disk full, ${failuresSeen} commits refused for want of space\n`);

  // Drain on the full disk: every batch is acknowledged and the acknowledgements commit.
  const drained = await runChild('drain', path, () => false);
  assert.match(drained[0] ?? '', /^O \d+$/, 'the queue opens on a full disk');
  const result = JSON.parse(drained.find((l) => l.startsWith('D '))!.slice(2)) as {
    seen: number[];
    drops: Record<string, Record<string, number>>;
    cursor: number;
  };
  const dropped = Object.values(result.drops).reduce((n, by) => n + Object.values(by).reduce((a, b) => a + b, 0), 0);
  const delivered = new Set(result.seen);
  assert.equal(delivered.size, result.seen.length, 'no record delivered twice within the drain');
  assert.ok(
    result.seen.every((n) => n >= 1 && n <= result.cursor),
    'nothing beyond the committed cursor',
  );

  const db = new Database(path, { readonly: true });
  const left = db.prepare('SELECT count(*) FROM chunks').pluck().get() as number;
  db.close();
  assert.equal(left, 0, 'the acknowledgements of the drain committed on the full disk: the queue is empty');

  // Acknowledged during the ingest rounds: delivered before the drain. The rest must add up exactly.
  const ackedBefore = result.cursor - delivered.size - dropped;
  assert.ok(ackedBefore >= 0, `records delivered in the drain (${delivered.size}) plus dropped (${dropped}) never exceed the cursor ${result.cursor}`);
  const missing: number[] = [];
  // Records the rounds acknowledged are gone for good; the drain's must be exactly the rest, in whole batches.
  for (let n = 1; n <= result.cursor; n++) if (!delivered.has(n)) missing.push(n);
  assert.equal(missing.length, ackedBefore + dropped, 'every record is delivered or accounted for');

  rmSync(filler, { force: true });
  const again = await runChild('ingest', path, (got) => got.filter((l) => l.startsWith('C ')).length >= 3);
  assert.ok(again.filter((l) => l.startsWith('C ')).length >= 3, 'with space back, records are committed again');
});
