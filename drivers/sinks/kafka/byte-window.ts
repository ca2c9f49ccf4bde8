/**
 * Bytes in flight, bounded: `acquire(n)` waits until n more bytes fit under the limit (first come, first
 * served), `release(n)` gives them back. One message larger than the whole limit is let through alone, so an
 * oversized batch cannot wait forever (the broker then decides about it).
 */
export class ByteWindow {
  private used = 0;
  private readonly waiting: { bytes: number; wake: () => void; fail: (err: unknown) => void }[] = [];
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  get inFlight(): number {
    return this.used;
  }

  acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.used += bytes;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        bytes,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          this.used += bytes;
          resolve();
        },
        fail: (err: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const at = this.waiting.indexOf(entry);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal!.reason);
        this.drain();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
    this.drain();
  }

  /** Fails every waiter (the sink is closing). */
  rejectAll(err: unknown): void {
    for (const entry of this.waiting.splice(0)) entry.fail(err);
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limit;
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) this.waiting.shift()!.wake();
  }
}
