/**
 * Where the centre's end-to-end acknowledgements travel: `<topic_prefix>/<device>/<stream>/ack`. Under the
 * device's own subtree, so one broker ACL pattern per device covers its batches and its acknowledgements; one
 * level deeper than batches, so the receiver's `<topic_prefix>/+/+` never reads its own acknowledgements.
 */
export function ackTopic(prefix: string, device: string, stream: string): string {
  return `${prefix}/${device}/${stream}/ack`;
}

/** What a gateway subscribes to for its acknowledgements. */
export function ackSubscription(prefix: string, device: string): string {
  return `${prefix}/${device}/+/ack`;
}

/** An acknowledgement is at most ~16.5 KiB (1,024 ranges); anything larger on the topic is not one. */
export const MAX_ACK_BYTES = 32 * 1024;

/** The receiver's retained online state ("1" / "0"): one level under the prefix, so `<prefix>/+/+` never matches it. */
export function centreOnlineTopic(prefix: string): string {
  return `${prefix}/_centre`;
}
