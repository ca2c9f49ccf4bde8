import { AgentError } from '../errors.ts';

/**
 * Why an envelope is ENVELOPE_MALFORMED, as stable names (docs/wire-format.md, "Rejections"). The code is
 * what the receiver counts and what every receiver must produce; the reason tells people, logs and the
 * negative test vectors which rule the envelope broke.
 */
export type MalformedReason =
  | 'truncated-header'
  | 'bad-magic'
  | 'bad-compression'
  | 'empty-name'
  | 'invalid-utf8'
  | 'out-of-range'
  | 'truncated-tag'
  | 'decompress-failed'
  | 'too-large'
  | 'trailing-compressed'
  | 'cbor-invalid'
  | 'trailing-cbor'
  | 'too-deep'
  | 'too-many-records'
  | 'bad-key'
  | 'duplicate-key'
  | 'unsupported-tag'
  | 'bad-tag-content'
  | 'not-an-array'
  | 'record-not-map'
  | 'count-mismatch';

export function malformed(reason: MalformedReason, message: string, cause?: unknown): AgentError {
  return new AgentError('ENVELOPE_MALFORMED', `${reason}: ${message}`, { details: { reason }, ...(cause === undefined ? {} : { cause }) });
}

/** The reason of an ENVELOPE_MALFORMED error made by `malformed`, if any. */
export function malformedReason(err: unknown): MalformedReason | undefined {
  const reason = err instanceof AgentError ? err.details?.reason : undefined;
  return typeof reason === 'string' ? (reason as MalformedReason) : undefined;
}
