/**
 * A log writer as a separate process (`node test/helpers/log-writer.ts FILE`), the way an instrument writes
 * its log: it appends JSON lines to FILE (opened with O_APPEND for every write), sometimes a line in two
 * writes (a partial last line for a while), and rotates the file every ROTATE_EVERY lines, alternating:
 *
 * - rename: FILE → FILE.<gen>, and the next line creates FILE anew;
 * - copytruncate: FILE copied to FILE.<gen>.copy, then truncated in place. The writer itself does both with
 *   nothing written in between, so no line falls into the window between copy and truncation that no tailer
 *   can read back (see drivers/sources/file/README.md).
 *
 * Every line carries `seq` (one sequence over all files) and `gen` (which physical file it was written to:
 * increased at every rotation and truncation). Messages over IPC: `pause` (answered with `{ paused, seq }`
 * once no write is half done), `truncate` (truncate FILE in place, no copy; answered `{ truncated }`),
 * `resume`, `stop` (answered with `{ stopped, seq }`).
 */
import { appendFileSync, copyFileSync, renameSync, truncateSync } from 'node:fs';

const file = process.argv[2]!;
const ROTATE_EVERY = Number(process.env.ROTATE_EVERY ?? 300);
const send = (m: unknown) => process.send!(m);

let seq = 0;
let gen = 0;
let sinceRotation = 0;
let rotations = 0;
let half: string | undefined;
let paused = false;

function line(): string {
  const sensor = `s-${(seq * 7919) % 211}`;
  const value = Math.round((20 + Math.sin(seq / 50) * 5 + Math.random()) * 1000) / 1000;
  return `${JSON.stringify({ seq: seq++, gen, sensor, ts: Date.now(), value, unit: 'degC', status: 'ok' })}\n`;
}

function rotate(): void {
  rotations++;
  if (rotations % 2 === 1) {
    renameSync(file, `${file}.${gen}`);
  } else {
    copyFileSync(file, `${file}.${gen}.copy`);
    truncateSync(file, 0);
  }
  gen++;
  sinceRotation = 0;
}

function tick(): void {
  if (paused) return;
  if (half !== undefined) {
    appendFileSync(file, half);
    half = undefined;
  }
  const n = 1 + Math.floor(Math.random() * 8);
  let text = '';
  for (let i = 0; i < n; i++) text += line();
  sinceRotation += n;
  if (Math.random() < 0.3) {
    // Leave a line without its newline until the next tick.
    const last = line();
    sinceRotation++;
    const cut = 1 + Math.floor(Math.random() * (last.length - 2));
    text += last.slice(0, cut);
    half = last.slice(cut);
  }
  appendFileSync(file, text);
  if (half === undefined && sinceRotation >= ROTATE_EVERY) rotate();
}

const timer = setInterval(tick, 5);

process.on('message', (m: string) => {
  if (m === 'pause') {
    if (half !== undefined) {
      appendFileSync(file, half);
      half = undefined;
    }
    paused = true;
    send({ paused: true, seq });
  } else if (m === 'truncate') {
    appendFileSync(file, ''); // just renamed away: truncate the new, empty one
    truncateSync(file, 0);
    gen++;
    sinceRotation = 0;
    send({ truncated: true });
  } else if (m === 'resume') {
    paused = false;
  } else if (m === 'stop') {
    clearInterval(timer);
    if (half !== undefined) appendFileSync(file, half);
    send({ stopped: true, seq });
    process.disconnect();
  }
});
appendFileSync(file, '');
send({ ready: true });
