/**
 * The documents a DSSE payload carries (docs/remote.md, "Trust"): their shapes and their time windows. A
 * document that does not fit is `malformed`, with the path of the first field that is wrong.
 */
import { z } from '../util/zod.ts';
import type { DocumentKind } from './dsse.ts';
import { decodeKey } from './ed25519.ts';
import { Refusal, type RefusalReason } from './refusal.ts';

/** How far a clock may be behind the signer's before a document counts as issued in the future. */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** A command's whole life (expires − issued) is at most this, so the device's store of used nonces is bounded. */
export const MAX_COMMAND_LIFETIME_MS = 60 * 60_000;
const MAX_ROOT_KEYS = 64;
const MAX_REVOKED_KEYS = 10_000;

const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const time = z
  .string()
  .regex(RFC3339_UTC, 'expected an RFC 3339 UTC time such as 2026-01-31T12:00:00Z')
  .refine((text) => Number.isFinite(Date.parse(text)), 'not a real date');
const publicKey = z.string().refine((text) => decodeKey(text) !== undefined, 'expected the base64url of a 32-byte Ed25519 public key');
export const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;
const keyId = z.string().regex(KEY_ID_PATTERN, 'expected a key id (16 lowercase hex characters)');
const version = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const name = z.string().min(1).max(128);

const rootSchema = z
  .object({
    kind: z.literal('root'),
    version,
    threshold: z.number().int().min(1),
    keys: z.array(publicKey).min(1).max(MAX_ROOT_KEYS),
    issued: time,
    expires: time,
  })
  .superRefine((doc, ctx) => {
    if (new Set(doc.keys).size !== doc.keys.length) ctx.addIssue({ code: 'custom', path: ['keys'], message: 'a key is listed twice' });
    if (doc.threshold > doc.keys.length)
      ctx.addIssue({ code: 'custom', path: ['threshold'], message: `threshold ${doc.threshold} is more than the ${doc.keys.length} keys` });
  });

const operatorCertSchema = z.object({ kind: z.literal('operator-cert'), name, key: publicKey, issued: time, expires: time, root_version: version });

const revocationsSchema = z.object({ kind: z.literal('revocations'), version, keys: z.array(keyId).max(MAX_REVOKED_KEYS), issued: time, expires: time });

const configSchema = z.object({
  kind: z.literal('config'),
  target: z.union([z.strictObject({ device: name }), z.strictObject({ group: name })]),
  version,
  issued: time,
  expires: time,
  config: z.record(z.string(), z.unknown()),
});

const commandSchema = z
  .object({
    kind: z.literal('command'),
    target: z.strictObject({ device: name }),
    action: name,
    args: z.record(z.string(), z.unknown()).default({}),
    nonce: z.string().regex(/^[0-9a-f]{32,128}$/, 'expected at least 16 random bytes as lowercase hex'),
    issued: time,
    expires: time,
  })
  .superRefine((doc, ctx) => {
    if (Date.parse(doc.expires) - Date.parse(doc.issued) > MAX_COMMAND_LIFETIME_MS)
      ctx.addIssue({ code: 'custom', path: ['expires'], message: 'a command may live at most 1h after it is issued' });
  });

const target = z.union([z.strictObject({ device: name }), z.strictObject({ group: name })]);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 as 64 lowercase hex characters');
/** Largest executable a manifest may describe; a device's own limit (fleet.update.max_bytes) is usually lower. */
export const MAX_UPDATE_BYTES = 2 ** 32;

/**
 * A self-update manifest (docs/update.md). The chunk list is a binary object of its own (36 bytes a chunk),
 * fetched like the chunks and bound here by its size and SHA-256, so the manifest stays a small message.
 */
const updateManifestSchema = z.object({
  kind: z.literal('update-manifest'),
  target,
  version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/, 'expected a version of letters, digits, . + _ -'),
  release: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  arch: z.string().regex(/^[a-z0-9_]{1,16}$/, 'expected an architecture such as x64 or arm64'),
  size: z.number().int().min(1).max(MAX_UPDATE_BYTES),
  sha256,
  chunks: z.strictObject({
    count: z
      .number()
      .int()
      .min(1)
      .max(1 << 20),
    sha256,
  }),
  /** Install outside the maintenance window and while alarms drain. */
  force: z.boolean().default(false),
  /** A lower release counter than the device installed: valid only with a threshold of root signatures too. */
  rollback: z.boolean().default(false),
  issued: time,
  expires: time,
});

/** The short-lived freshness statement for one manifest (TUF's timestamp role, per target). */
const updateTimestampSchema = z.object({
  kind: z.literal('update-timestamp'),
  target,
  version: version,
  manifest: sha256,
  issued: time,
  expires: time,
});

const SCHEMAS = {
  root: rootSchema,
  'operator-cert': operatorCertSchema,
  revocations: revocationsSchema,
  config: configSchema,
  command: commandSchema,
  'update-manifest': updateManifestSchema,
  'update-timestamp': updateTimestampSchema,
} as const;

export type RootDocument = z.infer<typeof rootSchema>;
export type OperatorCertDocument = z.infer<typeof operatorCertSchema>;
export type RevocationsDocument = z.infer<typeof revocationsSchema>;
export type ConfigDocument = z.infer<typeof configSchema>;
export type CommandDocument = z.infer<typeof commandSchema>;
export type UpdateManifestDocument = z.infer<typeof updateManifestSchema>;
export type UpdateTimestampDocument = z.infer<typeof updateTimestampSchema>;
export interface DocumentOf {
  root: RootDocument;
  'operator-cert': OperatorCertDocument;
  revocations: RevocationsDocument;
  config: ConfigDocument;
  command: CommandDocument;
  'update-manifest': UpdateManifestDocument;
  'update-timestamp': UpdateTimestampDocument;
}
export type Document = DocumentOf[DocumentKind];

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The payload's document, checked against its kind (the payloadType's kind must be the document's). */
export function decodeDocument<K extends DocumentKind>(kind: K, payload: Uint8Array, where = 'payload'): DocumentOf[K] {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(payload));
  } catch (cause) {
    throw new Refusal('malformed', `${where} is not UTF-8 JSON`, { cause });
  }
  if (typeof value === 'object' && value !== null && 'kind' in value && value.kind !== kind)
    throw new Refusal('malformed', `${where} is a ${JSON.stringify(value.kind)?.slice(0, 40)} document in a ${kind} envelope`);
  const result = SCHEMAS[kind].safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = issue.path.length > 0 ? `.${issue.path.join('.')}` : '';
    throw new Refusal('malformed', `${where}${path}: ${issue.message}`);
  }
  return result.data as DocumentOf[K];
}

/**
 * A document's time window: refused once past `expires` (with `expiredReason`: `expired_key` for a
 * certificate), or when `issued` is more than the allowed clock skew ahead of `now`.
 */
export function checkWindow(doc: { issued: string; expires: string }, now: Date, what: string, expiredReason: RefusalReason = 'expired'): void {
  const at = now.getTime();
  if (Date.parse(doc.expires) <= at) throw new Refusal(expiredReason, `${what} expired at ${doc.expires}`);
  if (Date.parse(doc.issued) > at + CLOCK_SKEW_MS) throw new Refusal('not_yet_valid', `${what} is issued at ${doc.issued}, in the future`);
}
