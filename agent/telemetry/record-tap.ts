/**
 * Live records as they are committed, for `edge-agent tap <stream>`: the source runner publishes each emit
 * once the queue has committed it, and a tap (the HTTP endpoint's) listens to one stream. With nobody
 * listening, publishing is one size check: the hot path pays nothing for a feature that is rarely on.
 * A listener must not keep the records (they are the source's objects) and must bound what it buffers.
 */
export type TapListener = (records: readonly unknown[]) => void;

export class RecordTap {
  private readonly listeners = new Map<TapListener, string>();

  /** Calls `listener` with every committed emit of `stream` until the returned function is called. */
  subscribe(stream: string, listener: TapListener): () => void {
    this.listeners.set(listener, stream);
    return () => void this.listeners.delete(listener);
  }

  get listening(): number {
    return this.listeners.size;
  }

  publish(stream: string, records: readonly unknown[]): void {
    if (this.listeners.size === 0) return;
    for (const [listener, wanted] of this.listeners) {
      if (wanted !== stream) continue;
      try {
        listener(records);
      } catch {
        // A failing tap is the tap's problem (it ends itself); ingest goes on.
      }
    }
  }
}
