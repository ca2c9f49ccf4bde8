import type { RecordOutput } from '../../agent/receiver/output.ts';
import type { EnvelopeHeader } from '../../agent/envelope/header.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';

/** A receiver output that keeps what it is given, and lets a test wait for a condition on it. */
export class CollectingOutput implements RecordOutput {
  readonly records: { header: EnvelopeHeader; record: AgentRecord }[] = [];
  private waiters: { test: () => boolean; resolve: () => void }[] = [];

  async write(header: EnvelopeHeader, records: AgentRecord[]): Promise<void> {
    for (const record of records) this.records.push({ header, record });
    this.waiters = this.waiters.filter((w) => (w.test() ? (w.resolve(), false) : true));
  }

  async close(): Promise<void> {}

  /** Resolves once `test` holds; rejects with `what` after `timeoutMs` (a failure, not a synchronisation). */
  waitFor(test: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (have ${this.records.length} records)`)), timeoutMs);
      this.waiters.push({ test, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  numbers(): number[] {
    return this.records.map((r) => r.record.n as number);
  }
}
