import { isatty } from 'node:tty';
import { pino } from 'pino';

/** The logging surface the agent and its drivers use: pino's, fields first (`log.info({ batch }, 'sent')`). */
export type Logger = pino.Logger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
/** `text`: lines for a person; `json`: JSON lines for a collector; `auto`: text when the destination is a terminal. */
export const LOG_FORMATS = ['auto', 'text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LoggerOptions {
  /** Default `auto`. */
  format?: LogFormat;
  /** A file descriptor or a file path (appended to); default 2, stderr. */
  destination?: number | string;
}

/**
 * Logs go to stderr, so stdout stays free for data (the receiver's records), and are written synchronously:
 * a killed process has written every line it logged. JSON lines carry the level's name and an ISO time in
 * UTC; text lines read `<local time with offset> <LEVEL> [component/type] message key=value …`. Secrets are
 * redacted by key name wherever they appear in a logged object, and passwords in URLs wherever they appear in
 * a line, in both formats.
 */
export function createLogger(level: LogLevel = 'info', options: LoggerOptions = {}): Logger {
  const dest = options.destination ?? 2;
  const file = pino.destination({ dest, sync: true });
  const text = options.format === 'text' || ((options.format ?? 'auto') === 'auto' && typeof dest === 'number' && isatty(dest));
  return pino(
    {
      level,
      base: undefined,
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['password', '*.password', 'token', '*.token', 'private_key', '*.private_key', 'key', '*.key'], censor: '[redacted]' },
    },
    // Every line passes one URL filter, whatever logged the URL (a field, a message, an error's text).
    {
      write: (line: string) => {
        const clean = redactUrlPasswords(line);
        if (PROBLEM_LINE.test(clean)) rememberProblem(clean);
        file.write(text ? textLine(clean) : clean);
      },
    },
  );
}

/**
 * Node's own warnings (ExperimentalWarning, DeprecationWarning, MaxListenersExceededWarning, a library's
 * `process.emitWarning`) go into the agent's log as `warn` lines, instead of the plain-text lines Node writes
 * on stderr: a log read as JSON lines (journald's, a collector's) would hold lines it cannot parse. Called by
 * the long-running commands once their logger exists; Node's printing listener is the only one then.
 */
export function logProcessWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error & { code?: string }) => {
    log.warn({ kind: 'node_warning', name: warning.name, ...(warning.code === undefined ? {} : { code: warning.code }) }, warning.message);
  });
}

const PROBLEM_LINE = /^\{"level":"(warn|error|fatal)"/;
const RECENT_PROBLEMS = 20;
const RECENT_PROBLEM_CHARS = 500;
const recent: string[] = [];

function rememberProblem(line: string): void {
  recent.push(line.length > RECENT_PROBLEM_CHARS ? `${line.slice(0, RECENT_PROBLEM_CHARS)}…` : line);
  if (recent.length > RECENT_PROBLEMS) recent.shift();
}

/**
 * The last warnings and errors this process logged (JSON lines, redacted as logged, newest last; at most 20
 * of at most 500 characters): the status page's "last errors", without a log file to read.
 */
export function recentProblems(): readonly string[] {
  return recent;
}

/** `scheme://user:password@` with the password: what a URL's userinfo looks like in a log line. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s"'/@:]*):[^\s"'/@]+@/gi;

/**
 * A URL's password replaced by `[redacted]` wherever one appears in `text` (`mqtt://gw:secret@host` →
 * `mqtt://gw:[redacted]@host`): configs may carry credentials in a URL, and the URL is logged as it is.
 */
export function redactUrlPasswords(text: string): string {
  return text.includes('@') ? text.replace(URL_PASSWORD, '$1:[redacted]@') : text;
}

/**
 * A logger that drops everything: for tests and for library use. Given a stream that writes nothing, not
 * pino's default: that opens an asynchronous writer on stdout, with its exit hook, at every start.
 */
export const silentLogger: Logger = pino({ level: 'silent' }, { write() {} });

/** One of the JSON lines createLogger's pino writes, as a line of text; a line it cannot read passes unchanged. */
export function textLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, msg, ...fields } = entry;
  const when = typeof time === 'string' || typeof time === 'number' ? localIsoTime(new Date(time)) : '-';
  // The child loggers' bindings say where a line comes from: `[sink/mqtt]`, `[queue]`, `[source/gen]`.
  const where: string[] = [];
  if (typeof fields.component === 'string') {
    where.push(fields.component);
    delete fields.component;
    if (typeof fields.type === 'string') {
      where.push(fields.type);
      delete fields.type;
    }
  }
  if (typeof fields.source === 'string') {
    where.push('source', fields.source);
    delete fields.source;
  }
  const parts = [
    when,
    String(level ?? '-')
      .toUpperCase()
      .padEnd(5),
  ];
  if (where.length > 0) parts.push(`[${where.join('/')}]`);
  if (msg !== undefined) parts.push(String(msg));
  for (const [key, value] of Object.entries(fields)) parts.push(`${key}=${fieldValue(key, value)}`);
  return `${parts.join(' ')}\n`;
}

/** Plain words stay bare; anything else (spaces, quotes, objects) is JSON, so that a line splits unambiguously. */
function fieldValue(key: string, value: unknown): string {
  if ((key === 'err' || key === 'error') && value !== null && typeof value === 'object' && 'message' in value) {
    // pino's error serializer: the message (and code) for a person; the stack only in the JSON format.
    const { message, code } = value as { message: unknown; code?: unknown };
    return JSON.stringify(typeof code === 'string' && !String(message).includes(code) ? `${code}: ${String(message)}` : String(message));
  }
  if (typeof value === 'string') return /^[\w.:/@+-]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** `2025-06-01T14:03:07.123+02:00`: the local time, with the offset that says which. */
export function localIsoTime(date: Date): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `.${pad(date.getMilliseconds(), 3)}${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`
  );
}
