/**
 * Callers waiting for a connection to come up (a sink's `waitConnected`): each wait ends when the
 * connection is up (`wakeAll`), when its signal aborts, or when the driver closes.
 */
export class ConnectionWaiters {
  private readonly waiters = new Set<() => void>();

  /** Resolves at the next `wakeAll`, or at once when `ready` or the signal already aborted. */
  wait(ready: boolean, signal: AbortSignal): Promise<void> {
    if (ready || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        this.waiters.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  wakeAll(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
