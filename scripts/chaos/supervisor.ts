import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Crashes of one process within this window that count as one crash loop. */
const CRASH_LOOP_CRASHES = 3;
const CRASH_LOOP_WINDOW_MS = 60_000;
/** Like a service manager's restart delay after an exit nobody asked for. */
const RESTART_AFTER_CRASH_MS = 1_000;

export interface SupervisedCounts {
  starts: number;
  kills: number;
  /** Exits nobody asked for (not our SIGKILL): restarted after a second, as a service manager would. */
  crashes: number;
  crashLoops: number;
}

/**
 * One real `edge-agent` process (`node agent/cli/main.ts <command> --config …`) that the chaos run kills and
 * starts; an exit it did not cause is a crash, logged with the process's last words and restarted.
 */
export class Supervised {
  readonly counts: SupervisedCounts = { starts: 0, kills: 0, crashes: 0, crashLoops: 0 };
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stderrTail = '';
  private wanted = false;
  private crashTimes: number[] = [];
  private inLoop = false;
  private restartTimer: NodeJS.Timeout | undefined;

  readonly name: string;
  private readonly args: string[];
  private readonly logPath: string;
  private readonly readyPattern: RegExp;
  private readonly onEvent: (line: string) => void;

  constructor(name: string, args: string[], logPath: string, readyPattern: RegExp, onEvent: (line: string) => void) {
    this.name = name;
    this.args = args;
    this.logPath = logPath;
    this.readyPattern = readyPattern;
    this.onEvent = onEvent;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get lastWords(): string {
    return this.stderrTail;
  }

  /** Starts the process and resolves once it logs `readyPattern`, exits, or `timeoutMs` passes (then false). */
  async start(timeoutMs = 60_000): Promise<boolean> {
    clearTimeout(this.restartTimer);
    if (this.child) return true;
    this.wanted = true;
    this.counts.starts++;
    this.stderrTail = '';
    const child = spawn(process.execPath, ['agent/cli/main.ts', ...this.args], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let ready: () => void = () => {};
    const readyOrExit = new Promise<void>((resolve) => (ready = resolve));
    child.stderr!.on('data', (d: Buffer) => {
      appendFileSync(this.logPath, d);
      this.stderrTail = (this.stderrTail + d).slice(-4000);
      if (this.readyPattern.test(this.stderrTail)) ready();
    });
    this.exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        this.child = undefined;
        ready();
        resolve();
        if (this.wanted) this.crashed(`${signal ?? code}`);
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([readyOrExit.then(() => this.child === child), timedOut]);
    clearTimeout(timer);
    return result;
  }

  /** From now on an exit is not a crash (a power cut is about to fail its every write); `kill()` follows. */
  expectDeath(): void {
    this.wanted = false;
    clearTimeout(this.restartTimer);
  }

  /** SIGKILL, and no restart until `start()` is called again. */
  async kill(): Promise<void> {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    if (!this.child) return;
    this.counts.kills++;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (a clean stop, at the end of a run) and no restart. */
  async stop(): Promise<void> {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    if (!this.child) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }

  private crashed(how: string): void {
    const now = Date.now();
    this.counts.crashes++;
    this.crashTimes = [...this.crashTimes.filter((t) => now - t < CRASH_LOOP_WINDOW_MS), now];
    const looping = this.crashTimes.length >= CRASH_LOOP_CRASHES;
    if (looping && !this.inLoop) this.counts.crashLoops++;
    this.inLoop = looping;
    this.onEvent(`${this.name} exited on its own (${how})${looping ? ' [crash loop]' : ''}: ${this.stderrTail.trim().split('\n').slice(-3).join(' | ')}`);
    this.restartTimer = setTimeout(() => {
      if (this.wanted) void this.start();
    }, RESTART_AFTER_CRASH_MS);
  }
}
