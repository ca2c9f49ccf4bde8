/**
 * The operator's side of a manifest: content-defined chunking of the new executable, the chunk list, and the
 * manifest and timestamp envelopes signed with an operator key (its certificate attached) and, for a rollback
 * manifest, a threshold of root keys as well.
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { type Ed25519Pair, type Envelope, rfc3339, signEnvelope, type UpdateManifestDocument, type UpdateTimestampDocument } from '../trust/index.ts';
import { type CdcChunk, cdcOfFile } from './cdc.ts';
import { encodeChunkList, manifestId } from './manifest.ts';

export type UpdateTarget = { device: string } | { group: string };

export interface ReleaseInput {
  path: string;
  version: string;
  release: number;
  arch: string;
  target: UpdateTarget;
  /** How long the manifest may be installed from. */
  validMs: number;
  force?: boolean;
  rollback?: boolean;
  now?: number;
}

export interface PreparedRelease {
  document: UpdateManifestDocument;
  chunks: CdcChunk[];
  list: Buffer;
}

export async function prepareRelease(input: ReleaseInput): Promise<PreparedRelease> {
  const chunks = await cdcOfFile(input.path);
  const size = statSync(input.path).size;
  const whole = createHash('sha256');
  // The chunks cover the file; hashing them again in order would need the bytes: read the file once more.
  for await (const block of createReadStream(input.path, { highWaterMark: 1 << 20 })) whole.update(block as Buffer);
  const list = encodeChunkList(chunks);
  const now = input.now ?? Date.now();
  const document: UpdateManifestDocument = {
    kind: 'update-manifest',
    target: input.target,
    version: input.version,
    release: input.release,
    arch: input.arch,
    size,
    sha256: whole.digest('hex'),
    chunks: { count: chunks.length, sha256: createHash('sha256').update(list).digest('hex') },
    force: input.force ?? false,
    rollback: input.rollback ?? false,
    issued: rfc3339(new Date(now - 1_000)),
    expires: rfc3339(new Date(now + input.validMs)),
  };
  return { document, chunks, list };
}

export interface Signing {
  operator: Ed25519Pair;
  certificate: Envelope;
  /** Root keys that sign too (a rollback manifest). */
  roots?: readonly Ed25519Pair[];
}

export function signManifest(document: UpdateManifestDocument, signing: Signing): { envelope: Envelope; id: string } {
  const envelope = signEnvelope('update-manifest', document, [signing.operator, ...(signing.roots ?? [])], signing.certificate);
  return { envelope, id: manifestId(envelope.payload) };
}

/** A timestamp for a manifest; its version is the signing time in milliseconds, so a newer one is always higher. */
export function signTimestamp(
  manifest: { id: string; document: UpdateManifestDocument },
  signing: Signing,
  validMs: number,
  now = Date.now(),
  version = now,
): Envelope {
  const document: UpdateTimestampDocument = {
    kind: 'update-timestamp',
    target: manifest.document.target,
    version,
    manifest: manifest.id,
    issued: rfc3339(new Date(now - 1_000)),
    expires: rfc3339(new Date(now + validMs)),
  };
  return signEnvelope('update-timestamp', document, [signing.operator], signing.certificate);
}
