/**
 * The release store cut by a power failure, not only by SIGKILL: each operation (stage, beginTrial, commit,
 * rollback) runs in a process of its own on the power-cut file system (scripts/chaos/powercut_fs.py), which
 * forgets at the cut every write and every name change that was not fsynced. The process stops after each
 * durable step, and before randomly chosen node:fs calls between them; the power goes there; after the
 * "reboot" (a remount of what was synced) the guard runs, and exactly one of {old, new} must be startable,
 * whole (its SHA-256 as the state records it), with the links and the state file agreeing. Once the process
 * has passed the operation's state write, only the new outcome is acceptable.
 * EDGE_RELEASE_POWERCUTS (default 2) random cut points per operation, drawn from a printed seed
 * (EDGE_RELEASE_POWERCUT_SEED repeats a run).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { PowerCutMount } from '../../scripts/chaos/fuse-mount.ts';
import { newSeed, Rng } from '../../scripts/chaos/rng.ts';
import { guardStart } from '../../agent/update/guard.ts';
import { ReleaseStore } from '../../agent/update/releases.ts';
import { powerCutTestOptions, requirePowerCut } from '../helpers/powercut.ts';

const STEP = join(import.meta.dirname, '../helpers/release-powercut-step.ts');
const TRUE = '/bin/true';
const RANDOM_CUTS = Number(process.env.EDGE_RELEASE_POWERCUTS ?? 2);
const SEED = Number(process.env.EDGE_RELEASE_POWERCUT_SEED ?? newSeed());
process.stdout.write(`# random cut points from seed ${SEED} (EDGE_RELEASE_POWERCUT_SEED=${SEED} repeats them)\n`);
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Operation = 'stage' | 'trial' | 'commit' | 'rollback';
type Outcome = 'old' | 'new';

const OPERATIONS: { op: Operation; prepare: Operation[]; steps: string[] }[] = [
  { op: 'stage', prepare: [], steps: ['staged', 'state'] },
  { op: 'trial', prepare: ['stage'], steps: ['state', 'link:previous', 'link:current'] },
  { op: 'commit', prepare: ['stage', 'trial'], steps: ['state', 'link:committed'] },
  { op: 'rollback', prepare: ['stage', 'trial'], steps: ['state', 'link:current'] },
];

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The layout before the operation: 1.0.0 committed, then what `steps` names. */
function prepare(root: string, steps: Operation[]): void {
  const store = new ReleaseStore(root);
  store.adopt('1.0.0', TRUE, { releaseCounter: 1 });
  if (steps.includes('stage')) store.stageFile('2.0.0', TRUE, 2);
  if (steps.includes('trial')) store.beginTrial('2.0.0', 60_000);
}

/** Which of {old, new} the state after the reboot is, or a message saying why it is neither. */
function outcomeOf(op: Operation, store: ReleaseStore): Outcome | string {
  const s = store.state();
  const trial = s.trial?.version;
  const staged = s.releases['2.0.0'] !== undefined;
  const is = (old: boolean, now: boolean): Outcome | string => (old ? 'old' : now ? 'new' : `neither: ${JSON.stringify(s)}`);
  if (op === 'stage') return is(!staged && s.committed === '1.0.0', staged && s.committed === '1.0.0' && !trial);
  if (op === 'trial') return is(!trial && s.committed === '1.0.0', trial === '2.0.0' && s.committed === '1.0.0');
  if (op === 'commit') return is(trial === '2.0.0' && s.committed === '1.0.0', !trial && s.committed === '2.0.0');
  return is(trial === '2.0.0' && s.committed === '1.0.0', !trial && s.committed === '1.0.0' && s.broken['2.0.0'] !== undefined);
}

/** After the reboot: the guard's repair, then everything that must hold whatever the cut hit. */
function checkAfterReboot(root: string, op: Operation, passed: string[], what: string): Outcome {
  const store = new ReleaseStore(root);
  const lock = join(root, 'update-state.lock');
  if (existsSync(lock)) assert.match(readFileSync(lock, 'utf8'), /^\d+$/, `${what}: a lock that survives a cut names its holder`);
  const decision = guardStart(store);
  const state = store.state();
  const running = state.trial?.version ?? state.committed;
  assert.deepEqual([decision.action, decision.version], ['start', running], `${what}: the guard starts what the state says`);
  const links = store.links();
  assert.deepEqual([links.current, links.committed], [running, state.committed], `${what}: the links agree with the state`);
  // A rollback of the first trial leaves the state naming no previous version; reconcile() then leaves the link.
  const previous = state.trial?.from ?? state.previous;
  if (previous !== undefined) assert.equal(links.previous, previous, `${what}: the previous link agrees with the state`);
  // Whole: what runs, what is committed, and every release the state records unless rolled back (pruned).
  const whole = new Set([running!, state.committed!, ...Object.keys(state.releases).filter((v) => !state.broken[v])]);
  for (const version of whole) assert.equal(sha256(store.executablePath(version)), state.releases[version]?.sha256, `${what}: ${version} is there whole`);
  const run = spawnSync(store.currentPath(), [], { encoding: 'utf8' });
  assert.equal(run.status, 0, `${what}: ${store.currentPath()} starts (${run.error ?? run.stderr})`);
  const outcome = outcomeOf(op, store);
  assert.ok(outcome === 'old' || outcome === 'new', `${what}: ${outcome}`);
  if (passed.includes('state')) assert.equal(outcome, 'new', `${what}: the state write was passed, so the new outcome is durable`);
  return outcome;
}

/** Runs `op` in its own process on the mount, stops it at `pauseAt`, cuts the power there; the steps passed. */
async function cutDuring(mount: PowerCutMount, root: string, op: Operation, pauseAt: string, keep: number, seed: number): Promise<string[]> {
  const child = spawn(process.execPath, [STEP, root, op, '2.0.0', TRUE, pauseAt], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', resolve);
    child.once('exit', () => resolve(''));
  });
  assert.match(line, /^[PD] /, `the ${op} process was to stop at ${pauseAt} or complete: ${stderr}`);
  await mount.cut(keep, seed);
  child.kill('SIGKILL');
  await exited;
  const passed = line.split(' ')[2]!;
  return passed === '-' ? [] : passed.split(',');
}

/**
 * The layout before `op`, made once on a plain directory (copied into each case's backing directory), and
 * how many synchronous node:fs calls `op` makes on it (a run on a copy).
 */
function template(op: Operation, steps: Operation[]): { layout: string; calls: number } {
  const dir = mkdtempSync(join(tmpdir(), 'edge-release-template-'));
  dirs.push(dir);
  prepare(join(dir, 'layout/state'), steps);
  cpSync(join(dir, 'layout'), join(dir, 'count'), { recursive: true, verbatimSymlinks: true });
  const run = spawnSync(process.execPath, [STEP, join(dir, 'count/state'), op, '2.0.0', TRUE, 'none'], { encoding: 'utf8' });
  const match = /^D (\d+) /.exec(run.stdout);
  assert.ok(match, `counting the fs calls of ${op}: ${run.stdout}${run.stderr}`);
  return { layout: join(dir, 'layout'), calls: Number(match[1]) };
}

describe('release store: a power cut after every durable step and between them', powerCutTestOptions(), () => {
  for (const { op, prepare: steps, steps: durable } of OPERATIONS) {
    it(`${op}: after the reboot the guard starts exactly one of {old, new}, whole, links and state agreeing`, async () => {
      requirePowerCut();
      const { layout, calls: total } = template(op, steps);
      const cuts: { pauseAt: string; keep: number; seed: number }[] = durable.map((s) => ({ pauseAt: `step:${s}`, keep: 0, seed: 0 }));
      cuts.push({ pauseAt: 'none', keep: 0, seed: 0 });
      const rng = new Rng(SEED + OPERATIONS.findIndex((o) => o.op === op));
      for (let i = 0; i < RANDOM_CUTS; i++) {
        // Every other cut lets a random half of the unsynced pages reach the disk (a disk cache's write-back).
        cuts.push({ pauseAt: `call:${rng.int(1, total)}`, keep: i % 2 === 0 ? 0 : 0.5, seed: rng.int(0, 2 ** 31 - 1) });
      }
      const seen: string[] = [];
      for (const { pauseAt, keep, seed } of cuts) {
        const dir = mkdtempSync(join(tmpdir(), 'edge-release-powercut-'));
        dirs.push(dir);
        const backing = join(dir, 'backing');
        const mnt = join(dir, 'mnt');
        cpSync(layout, backing, { recursive: true, verbatimSymlinks: true });
        mkdirSync(mnt);
        const root = join(mnt, 'state');
        const what = `${op} cut at ${pauseAt} (keep ${keep}, seed ${seed})`;
        let mount = await PowerCutMount.mount(backing, mnt);
        try {
          const passed = await cutDuring(mount, root, op, pauseAt, keep, seed);
          await mount.unmount();
          mount = await PowerCutMount.mount(backing, mnt);
          seen.push(`${pauseAt}→${checkAfterReboot(root, op, passed, what)}`);
        } finally {
          await mount.unmount().catch(() => mount.forceUnmount());
        }
      }
      process.stdout.write(`# ${op}: ${seen.join(' ')}\n`);
      // The step cuts alone must show both outcomes, or they cut nowhere that matters.
      assert.ok(
        seen.some((s) => s.endsWith('→new')),
        `${op}: some cut keeps the new outcome`,
      );
      if (op !== 'stage') assert.ok(seen.some((s) => s.startsWith('step:') && s.endsWith('→new')));
    });
  }
});
