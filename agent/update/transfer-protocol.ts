/**
 * The messages of a delivery over the control connection (docs/update.md, "Delivery"):
 *
 *   request  device → `<p>/<device>/update/req`   JSON {manifest: id, object: 'list'|'exe', chunks: [index…]}
 *            (MQTT 5: response topic `<p>/<device>/update/chunk`, correlation data the first 8 bytes of the id)
 *   chunk    server → the response topic, or `<p>/<device>/update/chunk` (MQTT 3.1.1)
 *            binary: 'EAU1' | object u8 | index u32 BE | first 8 bytes of the manifest id | data
 *
 * The list object is the binary chunk list cut in 64 KiB slices; the exe object is the executable cut as the
 * chunk list says. The device asks only for what it lacks; the server answers only what it is asked.
 */
import { CDC_MAX_BYTES } from './cdc.ts';

export type TransferObject = 'list' | 'exe';
export const LIST_SLICE_BYTES = CDC_MAX_BYTES;
export const FRAME_HEADER_BYTES = 17;
const MAGIC = 0x45415531; // 'EAU1'
/** A request names at most this many chunks (the device's window is smaller). */
export const MAX_REQUEST_CHUNKS = 64;

export interface ChunkRequest {
  manifest: string;
  object: TransferObject;
  chunks: number[];
}

export interface ChunkFrame {
  object: TransferObject;
  index: number;
  /** First 8 bytes of the manifest id, hex. */
  manifest: string;
  data: Buffer;
}

export const correlationOf = (manifest: string): Buffer => Buffer.from(manifest.slice(0, 16), 'hex');

export function encodeFrame(manifest: string, object: TransferObject, index: number, data: Uint8Array): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt8(object === 'list' ? 0 : 1, 4);
  header.writeUInt32BE(index, 5);
  correlationOf(manifest).copy(header, 9);
  return Buffer.concat([header, data]);
}

/** Undefined for anything that is no chunk frame (it is counted and dropped, never parsed further). */
export function decodeFrame(payload: Buffer): ChunkFrame | undefined {
  if (payload.length < FRAME_HEADER_BYTES || payload.readUInt32BE(0) !== MAGIC) return undefined;
  const kind = payload.readUInt8(4);
  if (kind > 1) return undefined;
  return {
    object: kind === 0 ? 'list' : 'exe',
    index: payload.readUInt32BE(5),
    manifest: payload.subarray(9, 17).toString('hex'),
    data: payload.subarray(FRAME_HEADER_BYTES),
  };
}

export function parseRequest(payload: Buffer): ChunkRequest | undefined {
  if (payload.length > 4096) return undefined;
  try {
    const r = JSON.parse(payload.toString('utf8')) as Partial<ChunkRequest>;
    if (typeof r.manifest !== 'string' || !/^[0-9a-f]{64}$/.test(r.manifest)) return undefined;
    if (r.object !== 'list' && r.object !== 'exe') return undefined;
    if (!Array.isArray(r.chunks) || r.chunks.length > MAX_REQUEST_CHUNKS || !r.chunks.every((i) => Number.isInteger(i) && i >= 0)) return undefined;
    return { manifest: r.manifest, object: r.object, chunks: r.chunks };
  } catch {
    return undefined;
  }
}
