/**
 * The batch-sequence high-water mark, kept in a small fsynced file beside the queue (`<queue>-seq`).
 *
 * With synchronous `normal` a power cut rolls the queue file back by up to the sync interval, and the
 * streams' next_seq with it; batches handed out in that window went out under sequences the file no longer
 * remembers, so new batches would reuse them and the centre would drop them as duplicates. Before a
 * sequence is used it is therefore reserved here, in steps, with an fsync a rollback of the queue file cannot
 * undo; at open each stream continues above its reservation. Sequences skipped that way are gaps, which the
 * centre accepts (it only needs a sequence never to carry two different batches). With synchronous `full`
 * every batch is durable in the queue file before it is handed out, so no mark is kept.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AgentError } from '../errors.ts';

/** Sequences reserved per fsync of the mark: one write per this many batches of a stream. */
export const SEQ_RESERVE_STEP = 1024;

export class SequenceMark {
  private readonly path: string;
  private readonly epoch: string;
  private readonly enabled: boolean;
  /** Stream → first sequence not reserved (every sequence below it may have been used). */
  private readonly reserved = new Map<string, number>();

  constructor(queuePath: string, epoch: Uint8Array, enabled: boolean) {
    this.path = `${queuePath}-seq`;
    this.epoch = Buffer.from(epoch).toString('hex');
    this.enabled = enabled;
    if (!enabled) return;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return; // none yet: a new queue, or one that ran with synchronous full
    }
    try {
      const saved = JSON.parse(text) as { epoch?: unknown; streams?: Record<string, unknown> };
      // A mark of another epoch belongs to a queue file that was replaced: its numbers mean nothing here.
      if (saved.epoch !== this.epoch || typeof saved.streams !== 'object' || saved.streams === null) return;
      for (const [name, seq] of Object.entries(saved.streams)) if (Number.isSafeInteger(seq)) this.reserved.set(name, seq as number);
    } catch (cause) {
      // Written by rename after an fsync, so never torn: damage is outside interference; say so, never guess.
      throw new AgentError('QUEUE_OPEN_FAILED', `the batch sequence mark ${this.path} is unreadable; move it aside to continue`, { cause });
    }
  }

  /** The lowest sequence the stream may use next: above every one that may have gone out before. */
  floor(stream: string): number {
    return this.reserved.get(stream) ?? 1;
  }

  /** Makes sure sequences up to `last` are reserved (durably) before any of them is handed out. */
  reserve(stream: string, last: number): void {
    if (!this.enabled || last < this.floor(stream)) return;
    const next = new Map(this.reserved).set(stream, last + SEQ_RESERVE_STEP);
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, JSON.stringify({ epoch: this.epoch, streams: Object.fromEntries(next) }), { mode: 0o600 });
    syncPath(tmp);
    renameSync(tmp, this.path);
    syncPath(dirname(this.path));
    this.reserved.set(stream, last + SEQ_RESERVE_STEP);
  }
}

function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
