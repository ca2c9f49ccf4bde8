/**
 * A STAND-IN FOR SYSTEMD (systemd is not PID 1 in the test environment): runs one service unit the way
 * systemd would, read from the unit file `edge-agent install` wrote. Only what that unit uses:
 *
 * - ExecStartPre= (each in order; a failure fails the start), ExecStart=, ExecStopPost= with $SERVICE_RESULT,
 *   $EXIT_CODE and $EXIT_STATUS set as systemd sets them; Environment=, WorkingDirectory=;
 * - Type=notify: NOTIFY_SOCKET is a datagram socket (test/helpers/notify-receiver.py); READY=1 ends the start, and
 *   TimeoutStartSec= without it stops the start (SIGTERM, $SERVICE_RESULT=timeout); WatchdogSec= is passed as
 *   WATCHDOG_USEC and a missed ping is SIGABRT with $SERVICE_RESULT=watchdog;
 * - Restart=on-failure after RestartSec=, RestartForceExitStatus=, SuccessExitStatus=, StartLimitBurst= starts within StartLimitIntervalSec= at most.
 *
 * Not done (named so no test relies on it): User=/Group= (everything runs as the test's user), the sandboxing
 * settings, MemoryMax=, the journal (output goes to `logPath`). Command lines are split on spaces (the
 * generated unit quotes nothing).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseUnit } from '../../agent/update/unit.ts';

export type UnitEvent =
  | { type: 'pre'; at: number; command: string; code: number | null }
  | { type: 'started'; at: number; pid: number; release: string }
  | { type: 'ready'; at: number; pid: number; release: string }
  | { type: 'exited'; at: number; pid: number; release: string; result: string; code: string; status: string }
  | { type: 'start-limit-hit'; at: number };

export class UnitSupervisor {
  readonly events: UnitEvent[] = [];
  private readonly unit: Map<string, Map<string, string[]>>;
  private readonly socketPath: string;
  private receiver: ChildProcess | undefined;
  private main: ChildProcess | undefined;
  private stopping = false;
  private notifyText = '';
  private readonly starts: number[] = [];
  private readonly waiters = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private mainRelease = '';
  /** The start in progress, through its ExecStopPost=: stop() waits for it, so nothing writes the log after. */
  private cycle: Promise<void> = Promise.resolve();

  private readonly logPath: string;
  private readonly extraEnv: Record<string, string>;

  constructor(unitPath: string, logPath: string, extraEnv: Record<string, string> = {}) {
    this.logPath = logPath;
    this.extraEnv = extraEnv;
    this.unit = parseUnit(readFileSync(unitPath, 'utf8'));
    this.socketPath = join(dirname(logPath), `notify-${process.pid}-${Math.random().toString(36).slice(2, 8)}.sock`);
  }

  private get(section: string, key: string): string[] {
    return this.unit.get(section)?.get(key) ?? [];
  }
  private seconds(key: string, fallback: number, section = 'Service'): number {
    const v = this.get(section, key).at(-1);
    return v === undefined ? fallback : Number(v);
  }
  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.extraEnv };
    for (const line of this.get('Service', 'Environment')) {
      const eq = line.indexOf('=');
      env[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return env;
  }

  /** Starts the unit (like `systemctl start`); events tell what happens. */
  async start(): Promise<void> {
    this.receiver = spawn('/usr/bin/python3', [join(import.meta.dirname, 'notify-receiver.py'), this.socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.receiver.stdout!.on('data', (d: Buffer) => this.onNotify(d.toString('utf8')));
    await this.waitFor(() => this.listening, 'the notify socket', 60_000, false);
    this.cycle = this.runOnce();
  }

  private log(text: string): void {
    appendFileSync(this.logPath, text);
  }

  private run(commandLine: string): Promise<number | null> {
    const [exe, ...args] = commandLine.replace(/^[-@+!]+/, '').split(/\s+/);
    const cwd = this.get('Service', 'WorkingDirectory').at(-1);
    const child = spawn(exe!, args, { cwd, env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => this.log(String(d)));
    child.stderr!.on('data', (d) => this.log(String(d)));
    return new Promise((done) => {
      child.once('error', (err) => {
        this.log(`${commandLine}: ${err.message}\n`);
        done(203);
      });
      child.once('exit', (code) => done(code));
    });
  }

  private async runOnce(): Promise<void> {
    if (this.stopping) return;
    const now = Date.now();
    const interval = this.seconds('StartLimitIntervalSec', 10, 'Unit') * 1000;
    const burst = this.seconds('StartLimitBurst', 5, 'Unit');
    this.starts.push(now);
    if (this.starts.filter((t) => t > now - interval).length > burst) {
      this.push({ type: 'start-limit-hit', at: now });
      return;
    }
    for (const pre of this.get('Service', 'ExecStartPre')) {
      const code = await this.run(pre);
      this.push({ type: 'pre', at: Date.now(), command: pre, code });
      if (this.stopping) return;
      if (code !== 0 && !pre.startsWith('-')) return this.after({ result: 'exit-code', code: 'exited', status: String(code) });
    }
    const execStart = this.get('Service', 'ExecStart').at(-1)!;
    const exePath = execStart.split(/\s+/)[0]!;
    this.mainRelease = basename(dirname(realpathSync(exePath)));
    const [exe, ...args] = execStart.split(/\s+/);
    const env: NodeJS.ProcessEnv = { ...this.env(), NOTIFY_SOCKET: this.socketPath };
    const watchdogSec = this.seconds('WatchdogSec', 0);
    if (watchdogSec > 0) env.WATCHDOG_USEC = String(watchdogSec * 1_000_000);
    const child = spawn(exe!, args, { cwd: this.get('Service', 'WorkingDirectory').at(-1), env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.main = child;
    child.stdout!.on('data', (d) => this.log(String(d)));
    child.stderr!.on('data', (d) => this.log(String(d)));
    if (child.pid !== undefined) {
      this.push({ type: 'started', at: Date.now(), pid: child.pid, release: this.mainRelease });
    }
    let result: string | undefined;
    let ready = false;
    const arm = (seconds: number, why: string, signal: NodeJS.Signals) => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        result = why;
        child.kill(signal);
        // TimeoutStopSec= for a stop that does not happen.
        setTimeout(() => child.kill('SIGKILL'), this.seconds('TimeoutStopSec', 90) * 1000).unref();
      }, seconds * 1000);
    };
    arm(this.seconds('TimeoutStartSec', 90), 'timeout', 'SIGTERM');
    this.onMessage = (message) => {
      if (message === 'READY=1' && !ready) {
        ready = true;
        this.push({ type: 'ready', at: Date.now(), pid: child.pid!, release: this.mainRelease });
        if (watchdogSec > 0) arm(watchdogSec, 'watchdog', 'SIGABRT');
        else clearTimeout(this.timer);
      } else if (message === 'WATCHDOG=1' && ready && watchdogSec > 0) arm(watchdogSec, 'watchdog', 'SIGABRT');
    };
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) => child.once('exit', (c, s) => done([c, s])));
    clearTimeout(this.timer);
    this.onMessage = () => {};
    this.main = undefined;
    const exit = signal
      ? { result: result ?? 'signal', code: 'killed', status: signal.replace(/^SIG/, '') }
      : { result: result ?? (code === 0 || this.listed('SuccessExitStatus', code) ? 'success' : 'exit-code'), code: 'exited', status: String(code) };
    this.forceRestart = !signal && this.listed('RestartForceExitStatus', code);
    this.push({ type: 'exited', at: Date.now(), pid: child.pid!, release: this.mainRelease, ...exit });
    await this.after(exit);
  }

  private async after(exit: { result: string; code: string; status: string }): Promise<void> {
    for (const post of this.get('Service', 'ExecStopPost')) {
      const [exe, ...args] = post.replace(/^[-@+!]+/, '').split(/\s+/);
      await new Promise<void>((done) => {
        const child = spawn(exe!, args, {
          cwd: this.get('Service', 'WorkingDirectory').at(-1),
          env: { ...this.env(), SERVICE_RESULT: exit.result, EXIT_CODE: exit.code, EXIT_STATUS: exit.status },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        child.stderr!.on('data', (d) => this.log(String(d)));
        child.once('exit', () => done());
        child.once('error', () => done());
      });
    }
    const restart = this.get('Service', 'Restart').at(-1) ?? 'no';
    const force = this.forceRestart;
    this.forceRestart = false;
    if (this.stopping || (!force && (exit.result === 'success' || (restart !== 'on-failure' && restart !== 'always')))) return;
    const wait = this.seconds('RestartSec', 0.1) * 1000;
    this.timer = setTimeout(() => {
      this.cycle = this.runOnce();
    }, wait);
  }

  private onMessage: (message: string) => void = () => {};
  private forceRestart = false;

  private listed(key: string, code: number | null): boolean {
    return this.get('Service', key).some((v) => v.split(/\s+/).includes(String(code)));
  }

  private listening = false;

  private onNotify(text: string): void {
    this.notifyText += text;
    // One JSON line per datagram; a datagram holds assignments separated by newlines (READY=1\nSTATUS=…).
    const lines = this.notifyText.split('\n');
    this.notifyText = lines.pop() ?? '';
    for (const line of lines) {
      const parsed = JSON.parse(line) as { listening?: string; message?: string };
      if (parsed.listening) this.listening = true;
      for (const assignment of parsed.message?.split('\n') ?? []) this.onMessage(assignment.trim());
    }
  }

  private push(event: UnitEvent): void {
    this.events.push(event);
    this.log(`# stand-in: ${JSON.stringify(event)}\n`);
    for (const wake of this.waiters) wake();
  }

  /** Resolves when `test` holds, checked at every event (and on a timer for conditions on files). */
  async waitFor(test: () => boolean, what: string, timeoutMs = 90_000, onEvents = true): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`stand-in: no ${what} within ${timeoutMs} ms; events: ${JSON.stringify(this.events.slice(-8))}`);
      await new Promise<void>((done) => {
        const wake = () => {
          this.waiters.delete(wake);
          clearTimeout(t);
          done();
        };
        const t = setTimeout(wake, onEvents ? 100 : 20);
        this.waiters.add(wake);
      });
    }
  }

  /** The main process now, if one runs. */
  mainPid(): number | undefined {
    return this.main?.pid;
  }

  /** `systemctl stop`: SIGTERM to the main process, no restart. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const main = this.main;
    if (main && main.exitCode === null && main.signalCode === null) {
      const gone = new Promise((done) => main.once('exit', done));
      main.kill('SIGTERM');
      setTimeout(() => main.kill('SIGKILL'), 20_000).unref();
      await gone;
    }
    await this.cycle;
    this.receiver?.kill('SIGKILL');
    rmSync(this.socketPath, { force: true });
  }

  /** The machine dies: the main process and the supervisor's own helpers are SIGKILLed, nothing runs after. */
  crash(): void {
    this.stopping = true;
    clearTimeout(this.timer);
    if (this.main?.pid) spawnSync('kill', ['-KILL', String(this.main.pid)]);
    this.receiver?.kill('SIGKILL');
    rmSync(this.socketPath, { force: true });
  }
}
