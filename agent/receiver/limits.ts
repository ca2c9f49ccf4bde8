/**
 * The receiver's limits, which bound its memory (docs/wire-format.md, "Limits"), and the heap they need.
 *
 * Each is checked before the work it guards: the envelope's size before decryption, the decompressed size
 * while inflating (zlib stops at the limit), the records and the nesting by a walk over the CBOR that builds
 * nothing (scanBody) before any record is materialised. What is left is bounded by the body's size: decoded,
 * a CBOR byte costs at most ≈114 bytes of heap (an empty byte string becomes a Uint8Array) and its JSON line
 * at most 15 characters, plus ≈76 per record for the line's device, stream, epoch and seq; the JSON text and
 * its flat copy both live in the heap for a moment.
 *
 * This module imports nothing heavy: agent/cli/bin.ts sizes the `receive` process's heap with it before
 * anything else is loaded.
 */
export { DEFAULT_RECEIVER_LIMITS, type ReceiverLimits } from '../envelope/limits.ts';
import type { ReceiverLimits } from '../envelope/limits.ts';

const MB = 1024 * 1024;
/** Measured heap of a running receiver before its first batch (MQTT input, SQLite state, libsodium), with room. */
const BASE_HEAP_MB = 24;
/** Heap per decompressed byte, worst case: decoded (≈114) plus its JSON text and that text's flat copy (2 × 15). */
const HEAP_PER_BODY_BYTE = 144;
/** Heap per record for its JSON line's prefix (≈76 characters, twice). */
const HEAP_PER_RECORD = 152;

/**
 * Old space (MB) the receiver needs for the largest batch its limits allow: the base, the largest body
 * decoded and written, and the envelope and its decrypted and decompressed copies (which V8 counts outside
 * the old space, but which pressure it through external memory accounting), rounded up to 8 MB.
 */
export function receiverHeapMb(limits: ReceiverLimits): number {
  const batch = limits.maxBatchBytes * HEAP_PER_BODY_BYTE + limits.maxRecords * HEAP_PER_RECORD + 3 * limits.maxEnvelopeBytes;
  return Math.ceil((BASE_HEAP_MB * MB + batch) / (8 * MB)) * 8;
}
