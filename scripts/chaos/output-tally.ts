import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ID_FIELD, SOURCE_KINDS, type SourceKind } from './ground-truth.ts';

export interface KindTally {
  /** Distinct ground-truth ids in the output. */
  delivered: number;
  /** Ids found in more than one batch: repeats a consumer that drops repeated (device, stream, epoch, seq) still sees. */
  duplicated: number;
  /** Lines of a batch written again (the receiver died between writing and marking it seen): dropped by that dedup. */
  rewrittenLines: number;
}

/**
 * Reads the receiver's JSON-lines output as it grows and counts, per source kind, which ids arrived and
 * how often. A batch is (stream, epoch, seq): the same line again within the same batch is the receiver
 * writing the batch again after a crash, which the documented dedup removes; any other repeat of an id is
 * a duplicate that survives it. A line torn by a SIGKILL mid-write is followed by the rest of the file
 * on the same line: the last complete JSON object on it is kept. A line is told from another copy of its
 * record by the batch and the `ts` the agent stamped when it queued the record.
 */
export class OutputTally {
  private readonly ids = new Map<SourceKind, Map<number, string>>(SOURCE_KINDS.map((k) => [k, new Map()]));
  private readonly dupIds = new Map<SourceKind, Set<number>>(SOURCE_KINDS.map((k) => [k, new Set()]));
  private readonly rewritten = new Map<SourceKind, number>(SOURCE_KINDS.map((k) => [k, 0]));
  private offset = 0;
  private partial = '';
  tornLines = 0;
  unknownLines = 0;

  private readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** Reads what was appended since the last call; returns the number of new distinct ids. */
  poll(): number {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return 0;
    }
    let added = 0;
    try {
      const size = fstatSync(fd).size;
      const chunk = Buffer.alloc(1 << 20);
      while (this.offset < size) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, size - this.offset), this.offset);
        if (n <= 0) break;
        this.offset += n;
        const text = this.partial + chunk.subarray(0, n).toString('utf8');
        const lines = text.split('\n');
        this.partial = lines.pop()!;
        for (const line of lines) if (line) added += this.line(line);
      }
    } finally {
      closeSync(fd);
    }
    return added;
  }

  private line(line: string): number {
    let parsed: { stream?: string; epoch?: string; seq?: number; record?: Record<string, unknown> } | undefined;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.tornLines++;
      const start = line.lastIndexOf('{"device":');
      if (start > 0) {
        try {
          parsed = JSON.parse(line.slice(start));
        } catch {}
      }
    }
    const kind = parsed?.stream as SourceKind | undefined;
    const map = kind ? this.ids.get(kind) : undefined;
    const id = kind ? parsed?.record?.[ID_FIELD[kind]] : undefined;
    if (!kind || !map || typeof id !== 'number') {
      if (parsed) this.unknownLines++;
      return 0;
    }
    // The same line again (same batch, same time the agent stamped) is a rewrite of the batch; the same id
    // with another stamp is a second copy of the record, even within one batch (a redelivered message can
    // land in the batch that holds its first copy).
    const batch = `${parsed!.epoch}/${parsed!.seq}/${String(parsed!.record!.ts)}`;
    const seen = map.get(id);
    if (seen === undefined) {
      map.set(id, batch);
      return 1;
    }
    if (seen === batch) this.rewritten.set(kind, this.rewritten.get(kind)! + 1);
    else this.dupIds.get(kind)!.add(id);
    return 0;
  }

  delivered(kind: SourceKind): number {
    return this.ids.get(kind)!.size;
  }

  /** Ids 1…accepted that never arrived. */
  missing(kind: SourceKind, accepted: number): number[] {
    const map = this.ids.get(kind)!;
    const out: number[] = [];
    for (let id = 1; id <= accepted; id++) if (!map.has(id)) out.push(id);
    return out;
  }

  tally(kind: SourceKind): KindTally {
    return { delivered: this.ids.get(kind)!.size, duplicated: this.dupIds.get(kind)!.size, rewrittenLines: this.rewritten.get(kind)! };
  }
}
