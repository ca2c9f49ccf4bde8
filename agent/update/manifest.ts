/**
 * The update manifest as the device checks it (the trust chain has checked its signature, shape and expiry):
 * target, architecture, size, version and release counter, with the reason codes of docs/update.md; and the
 * binary chunk list it binds by SHA-256 (36 bytes a chunk: u32 length, big-endian, then the SHA-256; offsets
 * follow from the lengths).
 */
import { createHash } from 'node:crypto';
import { openSync, readSync, closeSync } from 'node:fs';
import { Refusal, type UpdateManifestDocument } from '../trust/index.ts';
import { CDC_MAX_BYTES, type CdcChunk } from './cdc.ts';

export const CHUNK_ENTRY_BYTES = 36;

export interface ManifestContext {
  device: string;
  groups: readonly string[];
  /** `process.arch` of this device (x64, arm64). */
  arch: string;
  /** The version this executable is. */
  runningVersion: string;
  /** The highest release counter this device installed (the release store keeps it). */
  highestRelease: number;
  isBroken(version: string): boolean;
  /** fleet.update.max_bytes */
  maxBytes: number;
}

/**
 * Refuses a manifest this device must not install. `rootSigned` says whether a threshold of root keys signed
 * it too (asked only for a rollback manifest below the installed release counter).
 */
export function checkManifest(doc: UpdateManifestDocument, ctx: ManifestContext, rootSigned: () => boolean): void {
  const t = doc.target;
  if ('device' in t ? t.device !== ctx.device : !ctx.groups.includes(t.group))
    throw new Refusal('wrong_target', `the manifest targets ${JSON.stringify(t)}, not this device (${ctx.device}) or one of its groups`);
  if (doc.arch !== ctx.arch) throw new Refusal('wrong_arch', `the manifest is for ${doc.arch}, this device is ${ctx.arch}`);
  if (doc.size > ctx.maxBytes) throw new Refusal('oversize', `the executable is ${doc.size} bytes, more than fleet.update.max_bytes (${ctx.maxBytes})`);
  const minChunks = Math.ceil(doc.size / CDC_MAX_BYTES);
  if (doc.chunks.count < minChunks || doc.chunks.count > doc.size)
    throw new Refusal('malformed', `${doc.chunks.count} chunks cannot make ${doc.size} bytes in chunks of at most ${CDC_MAX_BYTES}`);
  if (doc.version === ctx.runningVersion) throw new Refusal('same_version', `version ${doc.version} is the version running`);
  if (ctx.isBroken(doc.version)) throw new Refusal('broken_version', `version ${doc.version} failed its trial here before; send a new manifest`);
  if (doc.release <= ctx.highestRelease) {
    const allowed = doc.release < ctx.highestRelease && doc.rollback && rootSigned();
    if (!allowed)
      throw new Refusal(
        'release_counter_lower',
        `release ${doc.release} is not above release ${ctx.highestRelease} installed here${doc.rollback ? ' (a rollback manifest needs a threshold of root signatures)' : ''}`,
      );
  }
}

/** The id of a manifest, named in requests and chunks: SHA-256 of the envelope's payload bytes. */
export function manifestId(envelopePayloadBase64: string): string {
  return createHash('sha256').update(Buffer.from(envelopePayloadBase64, 'base64')).digest('hex');
}

export function encodeChunkList(chunks: readonly CdcChunk[]): Buffer {
  const out = Buffer.alloc(chunks.length * CHUNK_ENTRY_BYTES);
  chunks.forEach((c, i) => {
    out.writeUInt32BE(c.length, i * CHUNK_ENTRY_BYTES);
    c.sha256.copy(out, i * CHUNK_ENTRY_BYTES + 4);
  });
  return out;
}

/** The chunk list checked against the manifest: its hash, its count, each length, the sum of lengths. */
export function decodeChunkList(list: Buffer, doc: UpdateManifestDocument): CdcChunk[] {
  if (list.length !== doc.chunks.count * CHUNK_ENTRY_BYTES)
    throw new Refusal('oversize', `the chunk list is ${list.length} bytes; the manifest declares ${doc.chunks.count} chunks`);
  if (createHash('sha256').update(list).digest('hex') !== doc.chunks.sha256)
    throw new Refusal('chunk_hash_mismatch', 'the chunk list does not match the SHA-256 in the manifest');
  const chunks: CdcChunk[] = [];
  let offset = 0;
  for (let i = 0; i < doc.chunks.count; i++) {
    const length = list.readUInt32BE(i * CHUNK_ENTRY_BYTES);
    if (length < 1 || length > CDC_MAX_BYTES) throw new Refusal('malformed', `chunk ${i} is ${length} bytes; a chunk is 1 to ${CDC_MAX_BYTES}`);
    chunks.push({ offset, length, sha256: Buffer.from(list.subarray(i * CHUNK_ENTRY_BYTES + 4, (i + 1) * CHUNK_ENTRY_BYTES)) });
    offset += length;
  }
  if (offset !== doc.size) throw new Refusal('malformed', `the chunks add up to ${offset} bytes; the manifest declares ${doc.size}`);
  return chunks;
}

const ELF_MACHINES: Record<number, string> = { 62: 'x64', 183: 'arm64', 40: 'arm' };

/** The Node-style architecture of an ELF executable (e_machine), or undefined if it is no ELF file. */
export function elfArch(path: string): string | undefined {
  const header = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try {
    if (readSync(fd, header, 0, 20, 0) < 20) return undefined;
  } finally {
    closeSync(fd);
  }
  if (header.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const machine = header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
  return ELF_MACHINES[machine] ?? `elf-${machine}`;
}
