/**
 * Readiness and watchdog for a `Type=notify` unit, through the `systemd-notify` binary (spawned: no native
 * addon links against libsystemd). Active only when NOTIFY_SOCKET is set; the unit needs NotifyAccess=all
 * because the message comes from the child, not the main process. WATCHDOG_USEC (set by systemd when the unit
 * has WatchdogSec=) decides the ping period: half of it, so one late ping is not fatal.
 */
export interface Notifier {
  ready(status?: string): void;
  status(text: string): void;
  stopping(): void;
  close(): void;
}

const NONE: Notifier = { ready() {}, status() {}, stopping() {}, close() {} };

export function systemdNotifier(env: NodeJS.ProcessEnv = process.env, onError: (err: Error) => void = () => {}): Notifier {
  if (!env.NOTIFY_SOCKET) return NONE;
  const binary = env.EDGE_AGENT_SYSTEMD_NOTIFY || 'systemd-notify';
  // Loaded here, under systemd only: every start evaluates this module, most not under a notify unit.
  const { spawn } = process.getBuiltinModule('node:child_process');
  const send = (...args: string[]) => {
    const child = spawn(binary, args, { stdio: 'ignore', env });
    child.on('error', onError);
    child.unref();
  };
  const watchdogUsec = Number(env.WATCHDOG_USEC);
  const watchdogPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(watchdogUsec) && watchdogUsec > 0 && watchdogPid === process.pid) {
    const period = Math.max(500, Math.floor(watchdogUsec / 2000));
    // The ping comes from the event loop: an agent whose loop is stuck stops pinging and is killed.
    timer = setInterval(() => send('WATCHDOG=1'), period).unref();
  }
  return {
    ready: (status) => send('--ready', ...(status ? [`--status=${status}`] : [])),
    status: (text) => send(`--status=${text}`),
    stopping: () => send('STOPPING=1'),
    close: () => clearInterval(timer),
  };
}
