/**
 * The release layout on the device, under one state directory (`root`):
 *
 *   releases/<version>/edge-agent   the executables (0755), one directory per version
 *   staging/<version>.part          where the delivery side writes a download (same filesystem: rename works)
 *   current   -> releases/<v>       what the unit starts (ExecStart=<root>/current/edge-agent run …)
 *   committed -> releases/<v>       the last known good; its executable runs the guard (ExecStartPre)
 *   previous  -> releases/<v>       the committed version before it (during a trial: the one it started from)
 *   update-state.json               the truth the links are derived from (agent/update/state.ts)
 *
 * Stable API (the delivery side calls it; add to it, do not rename):
 *   new ReleaseStore(root)                    nothing is touched until a method is called
 *   state()                                   the state file as it is now
 *   stagingPath(version)                      the `.part` file to write a download to
 *   stage(version, partPath, {releaseCounter, sha256, arch, allowOlder?})
 *                                             check (ELF for this device's arch, SHA-256, not broken, not older),
 *                                             fsync, rename into releases/<version>/edge-agent; throws UpdateRefusal
 *   refusal(version, releaseCounter)          the reason stage() would refuse a version before any byte is fetched
 *   beginTrial(version, deadlineMs)           current := version, previous := committed; it must commit within
 *                                             deadlineMs of its first start; the guard takes it from there
 *   commit(version)                           the running trial version passed its health gate: committed := version
 *   rollback(reason, message?)                current := committed, the trial version marked broken
 *   isBroken(version), forgetBroken(version)  a broken version is refused until a new manifest names it again
 *   highestReleaseCounter()                   the highest release counter committed on this device
 *   stageFile(version, file, releaseCounter)  a local executable copied in and staged (operator, install)
 *   adopt(version, executable, {releaseCounter}) install: copy a running executable in as the committed release
 *   reconcile()                               put the links right from the state (after a crash between the two)
 *
 * Crash safety: every decision is one atomic write of the state file; the links follow it and are switched by
 * rename + directory fsync. A kill at any point leaves the state old or new, and reconcile() (run by the guard
 * before every start) makes the links agree, so exactly one of {old committed, new in trial/committed} starts.
 */
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, openSync, readdirSync, readSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError } from '../errors.ts';
import { syncDirectory } from '../util/atomic-file.ts';
import { makeDirs } from '../util/make-dirs.ts';
import { checkElf, hostArch, type ReleaseArch } from './elf.ts';
import { readState, type Trial, type UpdateReason, type UpdateResult, type UpdateState, withStateLock, writeState } from './state.ts';
import { linkedVersion, switchLink } from './symlinks.ts';

export type { Trial, TrialExit, UpdateReason, UpdateResult, UpdateState } from './state.ts';
export type { ReleaseArch } from './elf.ts';

export const EXECUTABLE_NAME = 'edge-agent';

/** A staged download or candidate refused, with a stable reason (`err.reason`); the file is removed. */
export class UpdateRefusal extends AgentError {
  readonly reason: UpdateReason;
  constructor(reason: UpdateReason, message: string) {
    super('REMOTE_REFUSED', message, { details: { reason } });
    this.reason = reason;
  }
}

export interface StageOptions {
  releaseCounter: number;
  /** Hex SHA-256 of the whole executable (from the signed manifest). */
  sha256: string;
  /** The manifest's target arch; must be this device's, and the ELF header must agree. */
  arch: ReleaseArch;
  /** A release counter below the highest committed one (a root-signed rollback manifest allows it). */
  allowOlder?: boolean;
}

const VERSION_NAME = /^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$/;

export class ReleaseStore {
  readonly root: string;
  private readonly releasesDir: string;
  private readonly stagingDir: string;
  /** This device's architecture; tests of the refusal may not change it. */
  readonly arch: ReleaseArch;

  /** Called after each durable step (`staged`, `state`, `link:<name>`): a test seam to kill the process there. */
  private readonly onStep: (step: string) => void;

  constructor(root: string, options: { onStep?: (step: string) => void } = {}) {
    this.root = root;
    this.onStep = options.onStep ?? (() => {});
    this.releasesDir = join(root, 'releases');
    this.stagingDir = join(root, 'staging');
    const arch = hostArch();
    if (!arch) throw new AgentError('USAGE', `self-update runs on x64 and arm64 only, not ${process.arch}`);
    this.arch = arch;
  }

  state(): UpdateState {
    return readState(this.root);
  }

  executablePath(version: string): string {
    return join(this.releasesDir, checkVersion(version), EXECUTABLE_NAME);
  }

  /** The executable the unit starts (through the `current` link). */
  currentPath(): string {
    return join(this.root, 'current', EXECUTABLE_NAME);
  }

  /** The version each link names now (may lag the state after a crash until reconcile()). */
  links(): { current?: string; previous?: string; committed?: string } {
    return {
      current: linkedVersion(this.root, 'current'),
      previous: linkedVersion(this.root, 'previous'),
      committed: linkedVersion(this.root, 'committed'),
    };
  }

  stagingPath(version: string): string {
    makeDirs(this.stagingDir, 0o700);
    return join(this.stagingDir, `${checkVersion(version)}.part`);
  }

  isBroken(version: string): boolean {
    return this.state().broken[version] !== undefined;
  }

  /** A new manifest names a version marked broken: it may be tried again. */
  forgetBroken(version: string): void {
    this.change((state) => {
      delete state.broken[version];
    });
  }

  highestReleaseCounter(): number {
    return this.state().highest_release_counter;
  }

  /** Why a candidate would be refused before its bytes are looked at; undefined when it may be staged. */
  refusal(version: string, releaseCounter: number, allowOlder = false): UpdateRefusal | undefined {
    checkVersion(version);
    const state = this.state();
    const broken = state.broken[version];
    if (broken) return new UpdateRefusal('broken', `version ${version} was rolled back (${broken.reason} at ${broken.at}); a new manifest is needed`);
    if (!allowOlder && releaseCounter < state.highest_release_counter)
      return new UpdateRefusal(
        'older_release',
        `release counter ${releaseCounter} of ${version} is below ${state.highest_release_counter}, the highest installed`,
      );
    return undefined;
  }

  /**
   * Moves a finished download into the layout. Refused (the .part removed, UpdateRefusal thrown) when it is not
   * an ELF executable for this device, its SHA-256 differs from the manifest's, or refusal() says so.
   */
  stage(version: string, partPath: string, options: StageOptions): string {
    try {
      const refused = this.refusal(version, options.releaseCounter, options.allowOlder);
      if (refused) throw refused;
      if (options.arch !== this.arch)
        throw new UpdateRefusal('wrong_arch', `the manifest of ${version} targets ${options.arch}, this device runs ${this.arch}`);
      const elf = checkElf(partPath, this.arch);
      if (!elf.ok) throw new UpdateRefusal(elf.reason, elf.message);
      const digest = fsyncAndHash(partPath);
      if (digest !== options.sha256.toLowerCase())
        throw new UpdateRefusal('sha256_mismatch', `${partPath}: SHA-256 ${digest}, the manifest of ${version} says ${options.sha256}`);
    } catch (err) {
      rmSync(partPath, { force: true });
      throw err;
    }
    chmodSync(partPath, 0o755);
    const dir = join(this.releasesDir, version);
    makeDirs(dir, 0o755);
    renameSync(partPath, join(dir, EXECUTABLE_NAME));
    syncDirectory(dir);
    syncDirectory(this.releasesDir);
    this.onStep('staged');
    this.change((state) => {
      state.releases[version] = { release_counter: options.releaseCounter, sha256: options.sha256.toLowerCase(), arch: options.arch, staged_at: now() };
    });
    return join(dir, EXECUTABLE_NAME);
  }

  /** A local executable (an operator's copy, install): copied to the staging path, hashed, staged. */
  stageFile(version: string, file: string, releaseCounter: number, allowOlder = false): string {
    const part = this.stagingPath(version);
    copyFileSync(file, part);
    const sha256 = fsyncAndHash(part);
    return this.stage(version, part, { releaseCounter, sha256, arch: this.arch, allowOlder });
  }

  /** Install: the running executable becomes the committed release `version` (copied, fsynced, renamed). */
  adopt(version: string, executable: string, options: { releaseCounter?: number } = {}): void {
    this.stageFile(version, executable, options.releaseCounter ?? 0, true);
    this.change((state) => {
      if (state.trial) throw new AgentError('USAGE', `a trial of ${state.trial.version} is under way; adopt after it ends`);
      if (state.committed !== version) state.previous = state.committed;
      state.committed = version;
      state.highest_release_counter = Math.max(state.highest_release_counter, options.releaseCounter ?? 0);
    });
    this.reconcile();
  }

  /** Starts the trial of a staged version: the next start of the unit runs it, under the guard. */
  beginTrial(version: string, deadlineMs: number): Trial {
    const trial = this.change((state) => {
      if (state.trial?.version === version) return state.trial;
      if (state.trial) throw new AgentError('APPLY_FAILED', `a trial of ${state.trial.version} is under way`);
      if (!state.releases[version] || !existsSync(this.executablePath(version))) throw new AgentError('APPLY_FAILED', `version ${version} is not staged`);
      if (state.broken[version]) throw new UpdateRefusal('broken', `version ${version} is marked broken (${state.broken[version].reason})`);
      if (!state.committed) throw new AgentError('APPLY_FAILED', 'no committed version to come back to; run edge-agent install first');
      if (state.committed === version) throw new AgentError('APPLY_FAILED', `version ${version} is the committed one already`);
      const started = Date.now();
      state.trial = {
        version,
        from: state.committed,
        started_at: new Date(started).toISOString(),
        window_ms: deadlineMs,
        deadline_at: new Date(started + deadlineMs).toISOString(),
        starts: 0,
        last_start_at: undefined,
        exits: [],
      };
      return state.trial;
    });
    this.reconcile();
    return trial;
  }

  /** The trial version passed its health gate: it becomes the committed one. No-op when it already is. */
  commit(version: string): UpdateResult | undefined {
    const result = this.change((state) => {
      if (state.committed === version && !state.trial) return undefined;
      if (state.trial?.version !== version)
        throw new AgentError('APPLY_FAILED', `version ${version} is not in trial (trial: ${state.trial?.version ?? 'none'})`);
      state.previous = state.trial.from;
      state.committed = version;
      state.trial = undefined;
      state.highest_release_counter = Math.max(state.highest_release_counter, state.releases[version]?.release_counter ?? 0);
      state.last_result = { version, outcome: 'committed', running: version, at: now() };
      return state.last_result;
    });
    this.reconcile();
    this.prune();
    return result;
  }

  /** Ends the trial: current := committed, the trial version marked broken. Undefined when no trial runs. */
  rollback(reason: UpdateReason, message?: string): UpdateResult | undefined {
    const result = this.change((state) => {
      const trial = state.trial;
      if (!trial) return undefined;
      state.broken[trial.version] = { reason, ...(message ? { message } : {}), at: now() };
      state.trial = undefined;
      state.last_result = { version: trial.version, outcome: 'failed', reason, ...(message ? { message } : {}), running: state.committed, at: now() };
      return state.last_result;
    });
    this.reconcile();
    this.prune();
    return result;
  }

  /** Makes the links say what the state says; every switch is a rename and a directory fsync. */
  reconcile(): void {
    const state = this.state();
    if (!state.committed) return;
    const link = (name: string, version: string) => {
      if (switchLink(this.root, name, join('releases', version))) this.onStep(`link:${name}`);
    };
    link('committed', state.committed);
    const previous = state.trial ? state.trial.from : state.previous;
    if (previous) link('previous', previous);
    link('current', state.trial?.version ?? state.committed);
  }

  /** Removes releases nothing names any more (not committed, previous, in trial, or staged newer). */
  prune(): void {
    const state = this.state();
    const keep = new Set([state.committed, state.previous, state.trial?.version].filter((v): v is string => v !== undefined));
    for (const [v, info] of Object.entries(state.releases)) if (!state.broken[v] && info.release_counter > state.highest_release_counter) keep.add(v);
    let names: string[];
    try {
      names = readdirSync(this.releasesDir);
    } catch {
      return;
    }
    for (const name of names) if (!keep.has(name)) rmSync(join(this.releasesDir, name), { recursive: true, force: true });
  }

  /** Read, change and write the state under its lock; returns what `change` returns. */
  change<T>(change: (state: UpdateState) => T): T {
    makeDirs(this.root, 0o755);
    const out = withStateLock(this.root, () => {
      const state = this.state();
      const result = change(state);
      writeState(this.root, state);
      return result;
    });
    this.onStep('state');
    return out;
  }
}

function checkVersion(version: string): string {
  if (!VERSION_NAME.test(version)) throw new AgentError('USAGE', `${JSON.stringify(version)} is not a release version (letters, digits, . _ + -; at most 64)`);
  return version;
}

const now = (): string => new Date().toISOString();

/** fsyncs a file and returns its SHA-256 (hex), read in 1 MiB steps: bounded memory for a 100 MB executable. */
function fsyncAndHash(path: string): string {
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(1 << 20);
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
