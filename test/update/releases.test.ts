/**
 * The release layout without starting any agent: refusals at stage time with their reasons, trial, commit and
 * rollback through the links, the guard's decisions from recorded exits, and an update cut by SIGKILL after
 * every durable step (a process of its own, test/helpers/release-step.ts), after which the guard leaves
 * exactly one of {old committed, new} to start. The executables here are copies of /bin/true (a real ELF for
 * this machine) and a crafted arm64 ELF header; test/update/service.test.ts runs the real agent.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { guardStart, recordStop, TRIAL_EXIT } from '../../agent/update/guard.ts';
import { ReleaseStore, UpdateRefusal } from '../../agent/update/releases.ts';
import { updateStatusSource } from '../../agent/update/status.ts';
import { StatusReporter } from '../../agent/remote/status.ts';

const NODE = process.execPath;
const STEP = join(import.meta.dirname, '../helpers/release-step.ts');
const TRUE = '/bin/true';
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A layout with 1.0.0 (a copy of /bin/true) committed. */
function layout(): ReleaseStore {
  const dir = mkdtempSync(join(tmpdir(), 'edge-releases-'));
  dirs.push(dir);
  const store = new ReleaseStore(join(dir, 'state'));
  store.adopt('1.0.0', TRUE, { releaseCounter: 1 });
  return store;
}

const sha256 = (path: string) => execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0]!;

function refusedWith(fn: () => unknown, reason: string): void {
  assert.throws(fn, (err: unknown) => err instanceof UpdateRefusal && err.reason === reason && err.code === 'REMOTE_REFUSED');
}

describe('stage', () => {
  it('refuses a script (not_elf), an arm64 ELF on x64 (wrong_arch), a wrong SHA-256, a broken or older version; the .part is removed', () => {
    const store = layout();
    const part = store.stagingPath('2.0.0');
    writeFileSync(part, '#!/bin/sh\nexit 0\n');
    refusedWith(() => store.stage('2.0.0', part, { releaseCounter: 2, sha256: sha256(part), arch: 'x64' }), 'not_elf');
    assert.equal(existsSync(part), false);

    const header = Buffer.alloc(64);
    header.writeUInt32BE(0x7f454c46, 0);
    header[4] = 2;
    header[5] = 1;
    header.writeUInt16LE(2, 16);
    header.writeUInt16LE(183, 18); // EM_AARCH64
    writeFileSync(part, header);
    refusedWith(() => store.stage('2.0.0', part, { releaseCounter: 2, sha256: sha256(part), arch: 'x64' }), 'wrong_arch');
    writeFileSync(part, readFileSync(TRUE));
    refusedWith(() => store.stage('2.0.0', part, { releaseCounter: 2, sha256: sha256(part), arch: 'arm64' }), 'wrong_arch');
    writeFileSync(part, readFileSync(TRUE));
    refusedWith(() => store.stage('2.0.0', part, { releaseCounter: 2, sha256: '0'.repeat(64), arch: 'x64' }), 'sha256_mismatch');
    writeFileSync(part, readFileSync(TRUE));
    refusedWith(() => store.stage('2.0.0', part, { releaseCounter: 0, sha256: sha256(TRUE), arch: 'x64' }), 'older_release');
    assert.equal(store.links().current, '1.0.0');
    assert.deepEqual(Object.keys(store.state().releases), ['1.0.0']);

    store.stageFile('2.0.0', TRUE, 2);
    store.beginTrial('2.0.0', 60_000);
    store.rollback('canary_failed', 'test');
    refusedWith(() => store.stageFile('2.0.0', TRUE, 3), 'broken');
    store.forgetBroken('2.0.0'); // a new manifest names it again
    assert.equal(store.stageFile('2.0.0', TRUE, 3), join(store.root, 'releases/2.0.0/edge-agent'));
  });
});

describe('trial, commit, rollback', () => {
  it('switches current/previous/committed and keeps the highest release counter', () => {
    const store = layout();
    store.stageFile('2.0.0', TRUE, 5);
    store.beginTrial('2.0.0', 60_000);
    assert.deepEqual(store.links(), { current: '2.0.0', previous: '1.0.0', committed: '1.0.0' });
    store.commit('2.0.0');
    assert.deepEqual(store.links(), { current: '2.0.0', previous: '1.0.0', committed: '2.0.0' });
    assert.equal(store.highestReleaseCounter(), 5);
    assert.equal(store.state().last_result?.outcome, 'committed');

    store.stageFile('3.0.0', TRUE, 6);
    store.beginTrial('3.0.0', 60_000);
    const result = store.rollback('broker_unreachable', 'sink not connected');
    assert.deepEqual(store.links(), { current: '2.0.0', previous: '1.0.0', committed: '2.0.0' });
    assert.equal(result?.outcome, 'failed');
    assert.equal(store.state().broken['3.0.0']?.reason, 'broker_unreachable');
    assert.equal(store.highestReleaseCounter(), 5, 'a rolled-back release does not raise the counter');
    assert.equal(existsSync(join(store.root, 'releases/3.0.0')), false, 'the broken executable is removed');
    const status = updateStatusSource({ store, version: '2.0.0' })();
    assert.deepEqual(
      { committed: status?.committed, broken: status?.broken, outcome: (status?.last_result as { outcome: string; reason: string }).reason },
      { committed: '2.0.0', broken: ['3.0.0'], outcome: 'broker_unreachable' },
    );
  });
});

describe('guard', () => {
  const cases: [string, Record<string, string>, string][] = [
    [
      'gave up on its health gate: sink',
      { SERVICE_RESULT: 'exit-code', EXIT_CODE: 'exited', EXIT_STATUS: String(TRIAL_EXIT.broker_unreachable) },
      'broker_unreachable',
    ],
    [
      'gave up on its health gate: canary',
      { SERVICE_RESULT: 'exit-code', EXIT_CODE: 'exited', EXIT_STATUS: String(TRIAL_EXIT.canary_failed) },
      'canary_failed',
    ],
    ['aborted', { SERVICE_RESULT: 'signal', EXIT_CODE: 'killed', EXIT_STATUS: 'ABRT' }, 'aborted'],
    ['core dump', { SERVICE_RESULT: 'core-dump', EXIT_CODE: 'dumped', EXIT_STATUS: 'SEGV' }, 'aborted'],
    ['watchdog', { SERVICE_RESULT: 'watchdog', EXIT_CODE: 'killed', EXIT_STATUS: 'ABRT' }, 'no_health_in_time'],
    ['start timeout', { SERVICE_RESULT: 'timeout', EXIT_CODE: 'killed', EXIT_STATUS: 'TERM' }, 'no_health_in_time'],
  ];
  for (const [what, env, reason] of cases)
    it(`rolls back at the next start after one run that ${what} (${reason})`, () => {
      const store = layout();
      store.stageFile('2.0.0', TRUE, 2);
      store.beginTrial('2.0.0', 60_000);
      assert.deepEqual(guardStart(store), { action: 'start', version: '2.0.0', trial: true, starts: 1 });
      recordStop(store, env);
      const decision = guardStart(store);
      assert.equal(decision.action, 'rolled_back');
      assert.equal(store.state().last_result?.reason, reason);
      assert.equal(store.links().current, '1.0.0');
    });

  it('gives a plain failure maxStarts starts (exited_at_once), a killed run no verdict, and rolls back past the deadline', () => {
    const store = layout();
    store.stageFile('2.0.0', TRUE, 2);
    store.beginTrial('2.0.0', 60_000);
    for (let i = 1; i <= 3; i++) {
      assert.equal(guardStart(store).action, 'start');
      recordStop(store, { SERVICE_RESULT: 'exit-code', EXIT_CODE: 'exited', EXIT_STATUS: '1' });
    }
    assert.equal(guardStart(store).action, 'rolled_back');
    assert.equal(store.state().last_result?.reason, 'exited_at_once');

    store.stageFile('3.0.0', TRUE, 3);
    store.beginTrial('3.0.0', 60_000);
    guardStart(store);
    recordStop(store, { SERVICE_RESULT: 'signal', EXIT_CODE: 'killed', EXIT_STATUS: 'KILL' });
    assert.equal(guardStart(store).action, 'start', 'a SIGKILL from outside (an operator, the OOM killer) is one more start');
    assert.equal(guardStart(store, { maxStarts: 3, exitedAtOnceMs: 10_000, now: Date.now() + 61_000 }).action, 'rolled_back');
    assert.equal(store.state().last_result?.reason, 'no_health_in_time');
  });
});

describe('retained status', () => {
  it('the birth carries the update state: the trial, then the failed result with its reason', () => {
    const store = layout();
    store.stageFile('2.0.0', TRUE, 2);
    store.beginTrial('2.0.0', 60_000);
    const inputs = {
      device: 'gw',
      session: 1,
      version: '0.1.0',
      started: new Date().toISOString(),
      groups: [],
      lastExit: undefined,
      agent: () => ({ queue: { records: 0, bytes: 0, oldest_age_s: 0 }, sources: {}, sink: { state: 'connected' } }),
      config: () => ({ version: '1', layers: [], last_apply: undefined }),
      refused: () => ({}),
      lastError: () => undefined,
      update: updateStatusSource({ store, version: '1.0.0' }),
    };
    const reporter = new StatusReporter(
      inputs,
      't',
      async () => {},
      () => true,
    );
    const before = reporter.birth();
    assert.deepEqual((before.update as { trial: { version: string } }).trial.version, '2.0.0');
    store.rollback('canary_failed', 'no acknowledgement');
    const after = reporter.birth().update as { last_result: { outcome: string; reason: string }; broken: string[] };
    assert.deepEqual([after.last_result.outcome, after.last_result.reason, after.broken], ['failed', 'canary_failed', ['2.0.0']]);
  });
});

describe('trial window', () => {
  it('runs from the first start, not from beginTrial (a slow restart does not eat it)', () => {
    const store = layout();
    store.stageFile('2.0.0', TRUE, 2);
    store.beginTrial('2.0.0', 1_000);
    const later = Date.now() + 5_000;
    assert.equal(guardStart(store, { maxStarts: 3, exitedAtOnceMs: 10_000, now: later }).action, 'start');
    assert.equal(store.state().trial?.deadline_at, new Date(later + 1_000).toISOString());
    assert.equal(guardStart(store, { maxStarts: 3, exitedAtOnceMs: 10_000, now: later + 2_000 }).action, 'rolled_back');
    assert.equal(store.state().last_result?.reason, 'no_health_in_time');
  });
});

describe('SIGKILL after every durable step', () => {
  const points: [string, string, string[], string][] = [
    // operation, kill point, what the test prepares first, what the guard must start afterwards
    ['stage', 'staged', [], '1.0.0'],
    ['trial', 'state', ['stage'], '2.0.0'],
    ['trial', 'link:previous', ['stage'], '2.0.0'],
    ['trial', 'link:current', ['stage'], '2.0.0'],
    ['commit', 'state', ['stage', 'trial'], '2.0.0'],
    ['commit', 'link:committed', ['stage', 'trial'], '2.0.0'],
    ['rollback', 'state', ['stage', 'trial'], '1.0.0'],
    ['rollback', 'link:current', ['stage', 'trial'], '1.0.0'],
  ];
  for (const [operation, killAt, prepare, runs] of points)
    it(`${operation} killed after ${killAt}: the guard starts ${runs}, and the links agree with the state`, () => {
      const store = layout();
      if (prepare.includes('stage')) store.stageFile('2.0.0', TRUE, 2);
      if (prepare.includes('trial')) store.beginTrial('2.0.0', 60_000);
      const child = spawnSync(NODE, [STEP, store.root, operation, '2.0.0', killAt, TRUE], { encoding: 'utf8' });
      assert.equal(child.signal, 'SIGKILL', `the step process was to die at ${killAt}: ${child.stdout}${child.stderr}`);
      const decision = guardStart(store);
      assert.equal(decision.action, 'start');
      assert.equal(decision.version, runs);
      const state = store.state();
      assert.equal(store.links().current, state.trial?.version ?? state.committed);
      assert.equal(store.links().committed, state.committed);
      assert.ok([state.committed, state.trial?.version].includes(runs));
      assert.equal(existsSync(join(store.root, 'update-state.lock')), false, 'a killed holder leaves no lock behind');
    });
});
