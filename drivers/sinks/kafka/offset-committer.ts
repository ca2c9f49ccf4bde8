import type { Consumer, Message } from '@platformatic/kafka';
import { describeError, type Logger } from '../../../agent/sdk/index.ts';

interface Pending {
  topic: string;
  partition: number;
  offset: bigint;
  leaderEpoch: number;
}

/**
 * Commits, per partition, the offset after the last message the receiver has durably handled. Messages of a
 * partition are handled in order, so that offset covers every message before it. At most one commit request is
 * in flight; offsets handled meanwhile are committed together by the next one, so committing never slows the
 * handling down. A failed commit (a rebalance took the partition away, the coordinator moved) is only logged:
 * the offsets stay uncommitted and those messages are delivered again, which the receiver deduplicates.
 */
export class OffsetCommitter {
  private readonly pending = new Map<string, Pending>();
  private inFlight: Promise<void> | undefined;
  private readonly client: Consumer<Buffer, Buffer, Buffer, Buffer>;
  private readonly log: Logger;

  constructor(client: Consumer<Buffer, Buffer, Buffer, Buffer>, log: Logger) {
    this.client = client;
    this.log = log;
  }

  handled(message: Message<Buffer, Buffer, Buffer, Buffer>): void {
    this.pending.set(`${message.topic}\u0000${message.partition}`, {
      topic: message.topic,
      partition: message.partition,
      offset: message.offset + 1n,
      leaderEpoch: message.leaderEpoch,
    });
    this.inFlight ??= this.commitLoop();
  }

  private async commitLoop(): Promise<void> {
    while (this.pending.size > 0) {
      const offsets = [...this.pending.values()];
      this.pending.clear();
      try {
        await this.client.commit({ offsets });
      } catch (err) {
        this.log.warn({ err: describeError(err).slice(0, 300), partitions: offsets.length }, 'kafka offset commit failed; those messages will come again');
      }
    }
    this.inFlight = undefined;
  }

  /** Resolves once everything handled so far has been committed (or its commit failed). */
  async flush(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }
}
