/**
 * MQTT.js's packet writer (mqtt-packet's writeToStream.js) keeps, for the life of the process, the encoded
 * remaining length of every packet shorter than 16 KiB it has written (mqttjs/mqtt-packet#163). Each entry
 * is a 1–2-byte view of Node's shared Buffer pool, and a view keeps its whole pool slab alive: 64 KiB on
 * Node 24. A publisher's packets vary in length and other code takes from the pool between them, so each
 * new length pinned a fresh slab: at 1k rec/s ≈40 slabs (2.6 MiB) after 45 s, growing with every length
 * not seen before, up to 16,384 slabs (1 GiB). Here the encodings are carved from one 32 KiB block of our
 * own, a fixed slot per length: the cache holds that block and nothing else.
 *
 * writeToStream.js copies the function when it is evaluated, so this module must be evaluated before it:
 * agent/util/mqtt-client.ts (the one place that loads MQTT.js's code) and agent/broker/embedded.ts (aedes,
 * in the source tree) import it first.
 */
import numbers from 'mqtt-packet/numbers.js';

/** writeToStream caches the lengths below this; each encodes in at most two bytes (7 bits each). */
const CACHED_BELOW = 16_384;
const SLOT_BYTES = 2;

const encode = numbers.genBufVariableByteInt;
let block: Buffer | undefined;

numbers.genBufVariableByteInt = (num: number): Buffer => {
  const bytes = encode(num);
  if (!(num >= 0 && num < CACHED_BELOW)) return bytes; // not kept by the cache: the pooled view is garbage soon
  // Unpooled: a slab of the shared pool is what this module exists to avoid holding.
  block ??= Buffer.allocUnsafeSlow(CACHED_BELOW * SLOT_BYTES);
  const at = num * SLOT_BYTES;
  bytes.copy(block, at);
  return block.subarray(at, at + bytes.length);
};
