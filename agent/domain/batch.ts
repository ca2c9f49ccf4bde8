/** Batches as they cross the wire: the gateway's outgoing envelope and the centre's incoming message. */

/** A batch ready for the wire: `bytes` is the complete sealed envelope. */
export interface OutgoingBatch {
  readonly device: string;
  readonly stream: string;
  /**
   * The queue epoch (hex) the sequence belongs to: (device, stream, epoch, seq) names a batch for good. A
   * re-send carries the same four; a replaced queue starts a new epoch (docs/wire-format.md).
   */
  readonly epoch: string;
  readonly seq: number;
  readonly count: number;
  readonly bytes: Uint8Array;
}

/** A message taken from the broker on the centre side; resolving the handler acknowledges it. */
export interface IncomingMessage {
  readonly bytes: Uint8Array;
  /** Where it came from (topic), for logs. */
  readonly origin: string;
}
