import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { x25519 } from '../../agent/keys/x25519.ts';
import { writeKeyPair } from '../../agent/keys/keys.ts';
import { PowerCutMount, type CutReport } from './fuse-mount.ts';
import { checkQueue } from './queue-check.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SOURCE = 'gen';

export interface SessionOptions {
  synchronous: 'full' | 'normal';
  /** Records per second from the synthetic source. */
  rate?: number;
  /** A cut lands 0…maxDelayMs after the run's first committed emit (every fifth: 0…4×maxDelayMs after the agent starts). */
  maxDelayMs?: number;
  /** Probability that each unsynced page write survives a cut (0: every one is lost). */
  keep?: number;
  /**
   * Chunk compression. `none` (the default here) makes every record cost more WAL pages, so the WAL fills
   * and checkpoints (and restarts) several times within a short suite: cuts then also land in those.
   */
  compression?: 'none' | 'deflate';
}

/** One cut: what the source was told was committed against what the queue kept. */
export interface CutResult {
  index: number;
  delayMs: number;
  /** The highest record number the source logged as committed during this run (0 if none). */
  lastAcked: number;
  cursor: number;
  records: number;
  /** Acked records the queue no longer holds. */
  lost: number;
  integrity: string;
  problems: string[];
  fs: CutReport;
  /** The whole cycle: start, run, cut, kill, unmount, check, remount. */
  ms: number;
  /** Parts of it: agent start to its first commit; unmount, check and remount after the kill. */
  startMs: number;
  checkMs: number;
}

interface AgentProcess {
  child: ChildProcess;
  exited: Promise<NodeJS.Signals | number | null>;
  stderr: () => string;
}

function startAgent(config: string): AgentProcess {
  const child = spawn(process.execPath, ['agent/cli/main.ts', 'run', '--config', config], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return { child, exited, stderr: () => stderr };
}

function lastLogged(path: string): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return 0;
  }
  let last = 0;
  for (const line of text.split('\n')) if (/^\d+$/.test(line)) last = Math.max(last, Number(line));
  return last;
}

/** Polls a condition with a deadline (the file grows from another process: there is no event to wait on). */
async function waitUntil(test: () => boolean, what: string, timeoutMs: number, abort: Promise<never>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let stop = false;
  const aborted = abort.catch((err: unknown) => {
    stop = true;
    throw err;
  });
  const poll = (async () => {
    while (!stop && !test()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    await Promise.race([poll, aborted]);
  } finally {
    stop = true;
  }
}

/**
 * An agent ingesting into a queue on the power-cut file system, cut again and again on the same queue:
 * start → records flow → cut at a random moment → SIGKILL → unmount → check what survived → remount → the
 * next run continues from the surviving queue. The sink is a port that drops every connection, so nothing
 * ever leaves the queue and every acked record must still be in it.
 */
export class PowerCutSession {
  readonly dir: string;
  readonly options: Required<SessionOptions>;
  private readonly backing: string;
  private readonly mountpoint: string;
  private readonly config: string;
  private readonly commitLog: string;
  private readonly blackhole: Server;
  private mount: PowerCutMount | undefined;
  private previousCursor = 0;

  private constructor(dir: string, options: Required<SessionOptions>, blackhole: Server, port: number) {
    this.dir = dir;
    this.options = options;
    this.blackhole = blackhole;
    this.backing = join(dir, 'backing');
    this.mountpoint = join(dir, 'mnt');
    this.config = join(dir, 'agent.yaml');
    this.commitLog = join(dir, 'commits.log');
    mkdirSync(this.backing);
    mkdirSync(this.mountpoint);
    writeFileSync(
      this.config,
      `device: { id: powercut-gw }
data_dir: ${JSON.stringify(this.mountpoint)}
log: { level: warn }
keys: { device_private: keys/device.key, centre_public: keys/centre.pub }
sources:
  - { type: synthetic, name: ${SOURCE}, rate: ${options.rate}, batch: 500, max_pending: 16, commit_log: commits.log }
sink:
  type: mqtt
  url: mqtt://127.0.0.1:${port}
queue: { synchronous: ${options.synchronous}, commit_interval: 20ms, max_bytes: 4GiB }
batch: { compression: ${options.compression} }
`,
    );
  }

  static async open(options: SessionOptions): Promise<PowerCutSession> {
    const resolved: Required<SessionOptions> = { rate: 20_000, maxDelayMs: 1_000, keep: 0, compression: 'none', ...options };
    const dir = mkdtempSync(join(tmpdir(), 'powercut-'));
    // A sink that is never reachable: connections are accepted and dropped at once, so no batch is ever
    // acknowledged and no row ever leaves the queue. Owned by this process, so no other test can answer.
    const blackhole = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    const port = (blackhole.address() as { port: number }).port;
    const session = new PowerCutSession(dir, resolved, blackhole, port);
    writeKeyPair(x25519, join(dir, 'keys', 'device'));
    writeKeyPair(x25519, join(dir, 'keys', 'centre'));
    session.mount = await PowerCutMount.mount(session.backing, session.mountpoint);
    return session;
  }

  /** One full cycle; throws only when the harness itself fails (the agent died on its own, a mount failed). */
  async cut(index: number): Promise<CutResult> {
    const started = Date.now();
    const mount = this.mount;
    if (!mount) throw new Error('the power-cut file system is not mounted');
    writeFileSync(this.commitLog, '');
    const agent = startAgent(this.config);
    const died = agent.exited.then((how): never => {
      throw new Error(`agent exited on its own (${String(how)}) before the cut: ${agent.stderr()}`);
    });
    died.catch(() => {});
    let fs: CutReport;
    let startMs = 0;
    const delayMs = Math.floor(Math.random() * (this.options.maxDelayMs + 1));
    // Every fifth cut lands anywhere in the agent's start (queue open, WAL recovery, first commits); the
    // others once this run has committed something, so they land while records flow.
    const early = index % 5 === 0;
    try {
      if (!early) {
        await waitUntil(() => statSync(this.commitLog).size > 0, 'the first committed emit', 30_000, died);
        startMs = Date.now() - started;
      }
      await Promise.race([new Promise((r) => setTimeout(r, early ? delayMs * 4 : delayMs)), died]);
    } catch (err) {
      agent.child.kill('SIGKILL');
      await agent.exited;
      throw err;
    }
    // The disk forgets first, so nothing the agent does between the cut and its death reaches it.
    try {
      fs = await mount.cut(this.options.keep, index);
    } finally {
      agent.child.kill('SIGKILL');
      await agent.exited;
    }
    const lastAcked = lastLogged(this.commitLog);
    const killed = Date.now();
    await mount.unmount();
    this.mount = undefined;
    const check = checkQueue(join(this.backing, 'queue.db'), { source: SOURCE, stream: SOURCE, lastAcked, previousCursor: this.previousCursor });
    this.previousCursor = Math.max(this.previousCursor, check.cursor);
    this.mount = await PowerCutMount.mount(this.backing, this.mountpoint);
    return {
      index,
      delayMs,
      lastAcked,
      cursor: check.cursor,
      records: check.records,
      lost: check.lost,
      integrity: check.integrity,
      problems: check.problems,
      fs,
      ms: Date.now() - started,
      startMs,
      checkMs: Date.now() - killed,
    };
  }

  async close(): Promise<void> {
    try {
      await this.mount?.unmount().catch(() => this.mount?.forceUnmount());
    } finally {
      this.mount = undefined;
      await new Promise<void>((resolve) => this.blackhole.close(() => resolve()));
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
