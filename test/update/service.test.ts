/**
 * Self-update with the real executable, run as the generated unit says by the stand-in for systemd
 * (test/helpers/unit-supervisor.ts): a healthy release commits itself; each kind of bad release is rolled back
 * by the committed executable's guard within 90 s and reported as failed with its reason; an ELF for the other
 * arch and a non-ELF are refused at stage time while the device keeps running; a kill -9 during the first start
 * and before the commit ends with exactly one of {old, new committed} running, and the centre (the embedded
 * receiver, acknowledged_by: centre) then holds every record the source committed exactly once; and the arm64
 * executable, under qemu-user, installs its own layout and runs the guard. Each case has its own layout and runs beside others.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type Mosquitto, startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { UpdateRefusal } from '../../agent/update/releases.ts';
import { builtExecutable } from '../helpers/executable.ts';
import { type ConfigKind, installLayout, type Layout, plantScript, type UnitTimes, writeConfig } from '../helpers/update-layout.ts';
import { type UnitEvent, UnitSupervisor } from '../helpers/unit-supervisor.ts';

const dirs: string[] = [];
const supervisors: UnitSupervisor[] = [];
let mosquitto: Mosquitto;

before(async () => {
  builtExecutable('linux-x64');
  mosquitto = await startMosquitto();
});
after(async () => {
  for (const s of supervisors) await s.stop();
  await mosquitto?.stop();
  for (const d of dirs) if (!process.env.KEEP_UPDATE_DIRS) rmSync(d, { recursive: true, force: true });
});

function fresh(times?: UnitTimes): Layout {
  const dir = mkdtempSync(join(tmpdir(), 'edge-update-'));
  dirs.push(dir);
  return installLayout(dir, times);
}

function supervise(layout: Layout): UnitSupervisor {
  const s = new UnitSupervisor(layout.unitPath, layout.logPath, { EDGE_AGENT_NATIVE_CACHE: join(layout.dir, 'native') });
  supervisors.push(s);
  return s;
}

const readyOf = (s: UnitSupervisor, release: string, after = 0) =>
  s.events.find((e): e is Extract<UnitEvent, { type: 'ready' }> => e.type === 'ready' && e.release === release && e.at >= after);

/** The unit running 1.0.0, ready. */
async function running(layout: Layout): Promise<UnitSupervisor> {
  const s = supervise(layout);
  await s.start();
  await s.waitFor(() => readyOf(s, '1.0.0') !== undefined, '1.0.0 ready', 60_000);
  return s;
}

/** `systemctl restart`: the running unit stopped, and started again into what the state says. */
async function restart(s: UnitSupervisor, layout: Layout): Promise<UnitSupervisor> {
  await s.stop();
  const next = supervise(layout);
  await next.start();
  return next;
}

/** Waits for the rollback: FAILED with `reason` in the state, and 1.0.0 running again; returns its timings. */
async function rolledBack(s: UnitSupervisor, layout: Layout, reason: string, since: number): Promise<{ badStartToRunning: number; total: number }> {
  await s.waitFor(() => layout.store.state().last_result?.outcome === 'failed' && readyOf(s, '1.0.0', since) !== undefined, `rollback (${reason})`, 90_000);
  const state = layout.store.state();
  assert.equal(state.last_result?.reason, reason, JSON.stringify(state.last_result));
  assert.equal(state.last_result?.running, '1.0.0');
  assert.equal(state.trial, undefined);
  assert.ok(state.broken['1.1.0'], 'the failed release is marked broken');
  assert.deepEqual(layout.store.links().current, '1.0.0');
  const firstBad = s.events.find((e) => e.type === 'started' && e.release === '1.1.0');
  const back = readyOf(s, '1.0.0', since)!;
  const total = back.at - since;
  // The bound: from the bad release's first start to the committed one running again, the failure
  // reported. (total adds the stand-in's own start, which is not the device's.)
  const badStartToRunning = back.at - (firstBad?.at ?? since);
  assert.ok(badStartToRunning < 90_000, `rolled back ${badStartToRunning} ms after the bad start`);
  return { badStartToRunning, total };
}

const figures: Record<string, unknown> = {};
after(() => process.stderr.write(`# self-update figures: ${JSON.stringify(figures)}\n`));

describe('self-update under the stand-in for systemd', { concurrency: 3 }, () => {
  it('a healthy new release starts through the guard, passes its health gate and commits itself', async () => {
    const layout = fresh();
    const s = await running(layout);
    const t0 = Date.now();
    layout.store.stageFile('1.1.0', layout.executable, 2);
    layout.store.beginTrial('1.1.0', 60_000);
    const next = await restart(s, layout);
    await next.waitFor(() => layout.store.state().committed === '1.1.0', 'the commit of 1.1.0', 60_000);
    figures.apply_to_commit_ms = Date.now() - t0;
    // READY=1 goes out through a spawned systemd-notify, so it may arrive after the commit.
    await next.waitFor(() => readyOf(next, '1.1.0') !== undefined, '1.1.0 ready', 30_000);
    assert.deepEqual(layout.store.links(), { current: '1.1.0', previous: '1.0.0', committed: '1.1.0' });
    assert.equal(layout.store.state().last_result?.outcome, 'committed');
    assert.equal(layout.store.highestReleaseCounter(), 2);
    const status = JSON.parse(execFileSync(layout.executable, ['update', 'status', '--state-dir', layout.stateDir], { encoding: 'utf8' })) as {
      committed: string;
    };
    assert.equal(status.committed, '1.1.0');
  });

  // [what, reason, prepare, unit times, trial window]. The windows and the start timeout leave room for a slow
  // start on a loaded machine (a committed release that needs longer than TimeoutStartSec is killed too).
  const bad: [string, string, (layout: Layout) => void, UnitTimes?, number?][] = [
    ['exits at once (a real ELF: /usr/bin/false)', 'exited_at_once', (l) => l.store.stageFile('1.1.0', '/usr/bin/false', 2)],
    ['aborts after 5 s', 'aborted', (l) => plantScript(l.store, '1.1.0', 'sleep 5\nkill -ABRT $$')],
    ['hangs without ever becoming ready', 'no_health_in_time', (l) => plantScript(l.store, '1.1.0', 'exec sleep 600'), { startTimeoutSec: 12 }],
    ['cannot reach the broker', 'broker_unreachable', (l) => newConfig(l, 'no-broker')],
    ['fails the canary (never acknowledged by the centre)', 'canary_failed', (l) => newConfig(l, 'no-canary'), {}, 12_000],
  ];
  for (const [what, reason, prepare, times, window] of bad)
    it(`a new release that ${what} is rolled back within 90 s, reported as failed: ${reason}`, async () => {
      // Installed with 1.0.0 committed; the unit starts once the trial has begun (as after a restart into it).
      const layout = fresh(times);
      prepare(layout);
      const since = Date.now();
      layout.store.beginTrial('1.1.0', window ?? 6_000);
      const s = supervise(layout);
      await s.start();
      figures[`rollback_${reason}_ms`] = await rolledBack(s, layout, reason, since);
    });

  it('a release that stays up, feeds the watchdog and never commits is ended by the trial timer and rolled back', async () => {
    const layout = fresh();
    // systemd-notify and sleep are the planted release's own behaviour: it pings as a healthy process would.
    plantScript(layout.store, '1.1.0', 'systemd-notify --ready\nwhile :; do systemd-notify WATCHDOG=1; sleep 1; done');
    layout.store.beginTrial('1.1.0', 3_000);
    const s = supervise(layout);
    await s.start();
    await s.waitFor(() => readyOf(s, '1.1.0') !== undefined, '1.1.0 ready', 90_000);
    await s.waitFor(() => Date.now() > Date.parse(layout.store.state().trial!.deadline_at), 'the trial deadline', 30_000);
    // What edge-agent-trial.timer runs, from the committed executable.
    const since = Date.now();
    const expire = spawnSync(join(layout.stateDir, 'committed/edge-agent'), ['update', 'expire', '--state-dir', layout.stateDir], { encoding: 'utf8' });
    assert.match(expire.stderr, /"msg":"update trial expired".*"killed":\[\d+/, expire.stderr);
    await rolledBack(s, layout, 'no_health_in_time', since);
  });

  it('a file that is not an ELF and an executable for the other arch are refused at stage time; the device keeps running', async () => {
    const layout = fresh();
    const s = await running(layout);
    const pid = s.mainPid();
    const arm64 = builtExecutable('linux-arm64');
    for (const [file, reason] of [
      [layout.configPath, 'not_elf'],
      [arm64, 'wrong_arch'],
    ] as const)
      assert.throws(
        () => layout.store.stageFile('1.1.0', file, 2),
        (err: unknown) => err instanceof UpdateRefusal && err.reason === reason,
      );
    assert.equal(existsSync(join(layout.stateDir, 'releases', '1.1.0')), false);
    assert.throws(() => layout.store.beginTrial('1.1.0', 8_000), /not staged/);
    assert.equal(s.mainPid(), pid, 'the running agent was not disturbed');
    assert.equal(s.events.filter((e) => e.type === 'started').length, 1);
  });

  for (const moment of ['started', 'ready'] as const)
    it(`kill -9 of the new release ${moment === 'started' ? 'during its first start' : 'before its commit'}: afterwards exactly one of {old, new committed} runs, and every record reaches the centre once`, async () => {
      const layout = fresh();
      // Records flow from 1.0.0 before the update, so the kill lands on a queue with records in flight.
      setSynthetic(layout, 'rate: 100\n    batch: 5');
      const s = await running(layout);
      await s.waitFor(() => centreNumbers(layout).length >= 20, 'records at the centre from 1.0.0', 60_000);
      layout.store.stageFile('1.1.0', layout.executable, 2);
      layout.store.beginTrial('1.1.0', 60_000);
      const next = await restart(s, layout);
      await next.waitFor(() => next.events.some((e) => e.type === moment && e.release === '1.1.0'), `1.1.0 ${moment}`, 90_000);
      next.crash(); // the machine dies: SIGKILL, no stop hook
      const since = Date.now();
      const after = supervise(layout);
      await after.start();
      await after.waitFor(
        () => after.events.some((e) => e.type === 'ready' && e.at >= since) && layout.store.state().trial === undefined,
        'a settled start',
        60_000,
      );
      const state = layout.store.state();
      const ran = after.events.filter((e): e is Extract<UnitEvent, { type: 'ready' }> => e.type === 'ready').map((e) => e.release);
      assert.deepEqual(ran, [state.committed], 'exactly one release runs, the committed one');
      assert.ok(state.committed === '1.0.0' || state.committed === '1.1.0');
      assert.equal(layout.store.links().current, state.committed);
      await everyRecordOnceAtCentre(after, layout, `records_once_after_kill_${moment}`);
    });
});

function newConfig(layout: Layout, kind: ConfigKind): void {
  // The same executable as a new release; the configuration makes it unhealthy (and stays for the rollback).
  layout.store.stageFile('1.1.0', layout.executable, 2);
  writeConfig(layout.configPath, kind, mosquitto.url);
}

/** Replaces the synthetic source's settings (rate, batch, count) in the layout's config. */
function setSynthetic(layout: Layout, settings: string): void {
  const text = readFileSync(layout.configPath, 'utf8');
  const next = text.replace(/(name: load\n)( {4}\w+: \d+\n)+/, `$1    ${settings}\n`);
  assert.notEqual(next, text, 'the config has the synthetic source');
  writeFileSync(layout.configPath, next);
}

/**
 * The source's record numbers in the embedded receiver's output (records.jsonl beside the config), in arrival
 * order; the trial's canary records (stream `_canary`) are not the source's.
 */
function centreNumbers(layout: Layout): number[] {
  const path = join(layout.dir, 'records.jsonl');
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.pop(); // the line being written, or the empty string after the last newline
  return lines
    .map((line) => JSON.parse(line) as { stream: string; record: { n: number } })
    .filter((line) => line.stream === 'load')
    .map((line) => line.record.n);
}

/** Reads the queue file of the agent (readonly; it may be running). */
function queued<T>(layout: Layout, read: (db: Database.Database) => T): T {
  const db = new Database(join(layout.dir, 'data', 'queue.db'), { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/**
 * The second half: the source stops at the cursor the queue committed (the last record it was told is
 * durable), the unit runs until the queue is drained, and the centre then holds 1…cursor, each exactly once.
 * The synthetic source numbers its records 1, 2, 3… and resumes from its committed cursor, so a record lost in
 * the update's kills shows as a gap and one delivered again as a duplicate.
 */
async function everyRecordOnceAtCentre(s: UnitSupervisor, layout: Layout, figure: string): Promise<void> {
  await s.stop();
  const total = queued(layout, (db) => JSON.parse(db.prepare("SELECT value FROM cursors WHERE source = 'load'").pluck().get() as string) as number);
  assert.ok(total >= 20, `the queue committed ${total} records`);
  setSynthetic(layout, `rate: 100\n    batch: 5\n    count: ${total}`);
  const last = supervise(layout);
  await last.start();
  await last.waitFor(
    () => centreNumbers(layout).length >= total && queued(layout, (db) => db.prepare('SELECT COUNT(*) FROM chunks').pluck().get() as number) === 0,
    `all ${total} records at the centre and the queue drained`,
    90_000,
  );
  await last.stop();
  const numbers = centreNumbers(layout);
  const sorted = [...numbers].sort((a, b) => a - b);
  const duplicates = sorted.filter((n, i) => i > 0 && sorted[i - 1] === n);
  assert.deepEqual(duplicates, [], 'no record reaches the centre twice');
  assert.deepEqual(
    sorted,
    Array.from({ length: total }, (_, i) => i + 1),
    'no record lost',
  );
  figures[figure] = { records: total, committed: layout.store.state().committed };
}
