import { AgentError } from '../errors.ts';

/**
 * Why a remote document or command was refused: stable codes, the same in responses, status, logs and the
 * `edge_remote_refused_total{kind, reason}` counter (docs/remote.md, "Trust").
 */
export const REFUSAL_REASONS = [
  'malformed',
  'unsupported',
  'bad_signature',
  'unknown_key',
  'revoked_key',
  'expired_key',
  'threshold_not_met',
  'replayed',
  'older_version',
  'wrong_target',
  'expired',
  'not_yet_valid',
  'schema_invalid',
  'forbidden_setting',
  // Self-update (docs/update.md): what a manifest, its timestamp or a chunk can be refused for.
  'wrong_arch',
  'stale_timestamp',
  'release_counter_lower',
  'same_version',
  'broken_version',
  'chunk_hash_mismatch',
  'oversize',
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** A refusal: `reason` is for programs (and the counter label), the message for people. */
export class Refusal extends AgentError {
  readonly reason: RefusalReason;

  constructor(reason: RefusalReason, message: string, options: { cause?: unknown } = {}) {
    super('REMOTE_REFUSED', `${reason}: ${message}`, { ...options, details: { reason } });
    this.name = 'Refusal';
    this.reason = reason;
  }
}

export function isRefusal(err: unknown, reason?: RefusalReason): err is Refusal {
  return err instanceof Refusal && (reason === undefined || err.reason === reason);
}
