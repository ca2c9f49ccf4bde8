import { pino } from 'pino';

/** The logging surface the agent and its drivers use: pino's, fields first (`log.info({ batch }, 'sent')`). */
export type Logger = pino.Logger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * Logs go to stderr as JSON lines, so stdout stays free for data (the receiver's records). Secrets are
 * redacted by key name wherever they appear in a logged object.
 */
export function createLogger(level: LogLevel = 'info', destination: number | string = 2): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: { paths: ['password', '*.password', 'token', '*.token', 'private_key', '*.private_key', 'key', '*.key'], censor: '[redacted]' },
    },
    pino.destination({ dest: destination, sync: true }),
  );
}

/** A logger that drops everything: for tests and for library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
