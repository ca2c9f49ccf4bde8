/**
 * Errors with stable codes. Callers branch on `code`, never on message text; the message is for people.
 * `retryable` tells the runtime whether trying the same operation again later can succeed.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_UNREADABLE'
  | 'KEY_UNREADABLE'
  | 'KEY_INVALID'
  | 'KEY_PERMISSIONS'
  | 'QUEUE_OPEN_FAILED'
  | 'QUEUE_CLOSED'
  | 'QUEUE_FULL'
  | 'QUEUE_WRITE_FAILED'
  | 'RECORD_INVALID'
  | 'ENVELOPE_MALFORMED'
  | 'ENVELOPE_UNKNOWN_KEY'
  | 'ENVELOPE_AUTH_FAILED'
  | 'ENVELOPE_UNSUPPORTED'
  | 'ENVELOPE_TOO_LARGE'
  | 'RECEIVER_STREAM_LIMIT'
  | 'ACK_MALFORMED'
  | 'ACK_UNKNOWN_KEY'
  | 'ACK_AUTH_FAILED'
  | 'ACK_FOREIGN'
  | 'OUTPUT_FAILED'
  | 'OUTPUT_UNWRITABLE'
  | 'DEAD_LETTER_FAILED'
  | 'SOURCE_FAILED'
  | 'SINK_UNAVAILABLE'
  | 'SINK_REJECTED'
  | 'SINK_TIMEOUT'
  | 'SINK_NOT_DELIVERED'
  | 'BROKER_FAILED'
  | 'REMOTE_REFUSED'
  | 'APPLY_FAILED'
  | 'TRUST_STORE_FAILED'
  | 'HTTP_FAILED'
  | 'AGENT_UNREACHABLE'
  | 'USAGE';

export class AgentError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

export function isAgentError(err: unknown, code?: ErrorCode): err is AgentError {
  return err instanceof AgentError && (code === undefined || err.code === code);
}

/** A short single-line description of any thrown value, with its cause chain, for logs and CLI output. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      parts.push(typeof code === 'string' && !current.message.startsWith(code) ? `${code}: ${current.message}` : current.message);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(' <- ');
}
