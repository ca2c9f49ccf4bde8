/** A level-free wake-up: `wait()` resolves at the next `notify()` (or at once if one came since the last wait). */
export class Wakeup {
  private waiter: (() => void) | undefined;
  private pending = false;

  notify(): void {
    if (this.waiter) {
      const wake = this.waiter;
      this.waiter = undefined;
      wake();
    } else {
      this.pending = true;
    }
  }

  wait(): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => (this.waiter = resolve));
  }
}
