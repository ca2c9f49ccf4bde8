/**
 * A payload the broker keeps (queued for a subscriber away, retained) as a buffer of its own. The MQTT parser
 * hands a payload out as a view on the socket's read buffer when the packet arrived within one read: kept as
 * is, a 100-byte message would hold a 64 KiB read buffer alive, and the bytes counted against the bounds would
 * not be the bytes held. A view on a larger buffer is copied; a payload that owns its memory (give or take some
 * slack) is kept as it is. The copy is a buffer of its own, not one from the shared pool (itself 64 KiB).
 */
const SHARED_SLACK_BYTES = 8 * 1024;

export function ownPayload<P>(payload: P): P {
  if (!(payload instanceof Uint8Array)) return payload;
  if (payload.buffer.byteLength <= payload.byteLength + SHARED_SLACK_BYTES) return payload;
  // Not Buffer.from: a small copy would land in the shared pool, itself a larger buffer.
  const copy = Buffer.allocUnsafeSlow(payload.byteLength);
  copy.set(payload);
  return copy as P;
}
