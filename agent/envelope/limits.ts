/**
 * What a receiver accepts in one batch (docs/wire-format.md, "Limits"): the contract between a gateway's
 * batch settings and a centre's receiver settings. Here, below both, so that check-config can hold a
 * gateway's config against a centre's defaults, and the receiver can enforce them (agent/receiver/limits.ts
 * adds the heap they need).
 */
import { MAX_NESTING } from './cbor-decode.ts';

/** Room a sealed batch needs beyond its compressed body: header, tag, and compression overhead on incompressible data. */
export const ENVELOPE_OVERHEAD_BYTES = 1024;

export interface ReceiverLimits {
  /** receiver.max_envelope_bytes: a larger message is refused before decryption. */
  maxEnvelopeBytes: number;
  /** receiver.max_batch_bytes: a body inflating to more is refused (it stops inflating there). */
  maxBatchBytes: number;
  /** receiver.max_records: records in one batch. */
  maxRecords: number;
  /** receiver.max_nesting: arrays and maps, the batch array being level 1 and a record level 2. */
  maxNesting: number;
}

/**
 * Defaults that take every batch a gateway's default config makes (batch.max_records 1000, batch.max_bytes
 * 256KiB, records nested at most 255 levels) with room: 100,000 records is the most batch.max_records
 * allows, 512 KiB twice the default batch.max_bytes (each byte of it costs heap, agent/receiver/limits.ts).
 */
export const DEFAULT_RECEIVER_LIMITS: ReceiverLimits = {
  maxEnvelopeBytes: 1024 * 1024,
  maxBatchBytes: 512 * 1024,
  maxRecords: 100_000,
  maxNesting: MAX_NESTING,
};
