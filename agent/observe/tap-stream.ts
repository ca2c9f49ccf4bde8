/**
 * `/api/tap?stream=NAME`: the records of one stream as they are committed, as JSON lines, redacted
 * (redact.ts). Bounded twice: the whole tap ends after `maxBytes`, and records that arrive while the client
 * has not read the last 64 KiB are skipped (counted, and said in the last line), so a slow or stalled reader
 * costs the agent at most that much memory and never slows ingest. One line is at most 16 KiB: a larger
 * record is shown cut, marked `"truncated": true`.
 */
import type { RecordTap } from '../telemetry/record-tap.ts';
import { redactValue } from './redact.ts';

const CLIENT_BUFFER_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 16 * 1024;

export interface TapOptions {
  tap: RecordTap;
  stream: string;
  maxBytes: number;
  secrets: readonly string[];
}

/** Where the lines go: the HTTP response (a `node:http` ServerResponse is one). */
export interface TapOutput {
  write(chunk: string): unknown;
  end(): unknown;
  /** Bytes written that the client has not taken yet. */
  readonly writableLength: number;
}

/** Starts the tap on `out`; the function returned stops it (the client went away). */
export function tapStream(o: TapOptions, out: TapOutput): () => void {
  let sent = 0;
  let skipped = 0;
  let done = false;
  let unsubscribe = () => {};
  const stop = () => {
    done = true;
    unsubscribe();
  };
  const finish = (why: string) => {
    if (done) return;
    stop();
    out.write(`${JSON.stringify({ end: why, bytes: sent, skipped })}\n`);
    out.end();
  };
  out.write(`${JSON.stringify({ tap: o.stream, maxBytes: o.maxBytes })}\n`);
  unsubscribe = o.tap.subscribe(o.stream, (records) => {
    for (const record of records) {
      if (done) return;
      if (out.writableLength >= CLIENT_BUFFER_BYTES) {
        skipped++;
        continue;
      }
      let line: string;
      try {
        line = JSON.stringify(redactValue(record, o.secrets));
      } catch (err) {
        line = JSON.stringify({ unshowable: (err as Error).message });
      }
      if (line.length > MAX_LINE_BYTES) line = JSON.stringify({ truncated: true, start: line.slice(0, MAX_LINE_BYTES) });
      const chunk = `${line}\n`;
      const bytes = Buffer.byteLength(chunk);
      if (sent + bytes > o.maxBytes) return finish('max_bytes');
      sent += bytes;
      out.write(chunk);
    }
  });
  return stop;
}
