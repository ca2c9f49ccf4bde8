/**
 * The receiver's limits, which bound its memory (docs/wire-format.md, "Limits"), and the heap they need.
 *
 * Each is checked before the work it guards: the envelope's size before decryption, the decompressed size
 * while inflating (zlib stops at the limit), the records and the nesting by a walk over the CBOR that builds
 * nothing (scanBody) before any record is materialised. What is left is bounded by the body's size: decoded
 * and written, a CBOR byte costs at most ≈256 bytes of heap (see HEAP_PER_BODY_BYTE), plus ≈76 characters
 * per record for the line's device, stream, epoch and seq, held twice for a moment (the text and its copy).
 *
 * This module imports nothing heavy: agent/cli/bin.ts sizes the `receive` process's heap with it before
 * anything else is loaded.
 */
export { DEFAULT_RECEIVER_LIMITS, type ReceiverLimits } from '../envelope/limits.ts';
import type { ReceiverLimits } from '../envelope/limits.ts';

const MB = 1024 * 1024;
/** Measured heap of a running receiver before its first batch (MQTT input, SQLite state, and then libsodium too), with room. */
const BASE_HEAP_MB = 24;
/**
 * Heap per decompressed byte, worst case: a body of empty byte strings. Each decodes to a Uint8Array (≈112
 * bytes of heap) and is written through a replacer object as `{"$base64":""}`; measured, 1 MiB of them needed
 * an old space between 232 MB (out of memory) and 264 MB (written): 256 per byte, with the base above.
 */
const HEAP_PER_BODY_BYTE = 256;
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
