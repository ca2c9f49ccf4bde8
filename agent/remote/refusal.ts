/**
 * Why something remote is refused: the stable reason codes of docs/remote.md, in responses, status, logs and
 * the `edge_remote_refused_total{kind, reason}` counter.
 *
 * A minimal stand-in for the trust room's `Refusal` (agent/trust/), kept here until both meet: the same code
 * (REMOTE_REFUSED), the same `reason` field, so callers branch on `err.reason` whichever class threw.
 */
import { AgentError } from '../errors.ts';

export type RefusalReason =
  | 'malformed'
  | 'unsupported'
  | 'bad_signature'
  | 'unknown_key'
  | 'revoked_key'
  | 'expired_key'
  | 'threshold_not_met'
  | 'replayed'
  | 'older_version'
  | 'wrong_target'
  | 'expired'
  | 'not_yet_valid'
  | 'schema_invalid'
  | 'forbidden_setting';

export class RemoteRefusal extends AgentError {
  readonly reason: RefusalReason;

  constructor(reason: RefusalReason, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super('REMOTE_REFUSED', message, { ...options, details: { ...options.details, reason } });
    this.reason = reason;
  }
}

/** The refusal reason of an error thrown by any remote check (ours or the trust room's), if it is one. */
export function refusalReason(err: unknown): RefusalReason | undefined {
  if (err instanceof AgentError && err.code === 'REMOTE_REFUSED') {
    const reason = (err as { reason?: unknown }).reason ?? err.details?.reason;
    if (typeof reason === 'string') return reason as RefusalReason;
  }
  return undefined;
}
