/**
 * A progress line for long queue operations, on stderr and only when stderr is a terminal: a pipe, a log
 * file or journald gets no carriage-return noise, and stdout (where an export may go) is never touched.
 * Our own rather than a library: it is one line redrawn at most ten times a second, and every dependency
 * ships to every gateway.
 */
export class Progress {
  private readonly label: string;
  private readonly total: number;
  private readonly unit: string;
  private readonly stream: NodeJS.WriteStream;
  private readonly enabled: boolean;
  private done = 0;
  private lastDraw = 0;
  private readonly started = performance.now();

  constructor(label: string, total: number, unit = 'records', stream: NodeJS.WriteStream = process.stderr) {
    this.label = label;
    this.total = total;
    this.unit = unit;
    this.stream = stream;
    this.enabled = stream.isTTY === true && process.env.TERM !== 'dumb';
  }

  add(n: number): void {
    this.done += n;
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.draw();
  }

  private draw(): void {
    const width = 24;
    const fraction = this.total > 0 ? Math.min(1, this.done / this.total) : 0;
    const filled = Math.round(fraction * width);
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? Math.round(this.done / seconds) : 0;
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    if (this.total <= 0) {
      // Salvage cannot know the total before it has read the file: a count and a rate only.
      this.stream.write(`\r${this.label} ${this.done.toLocaleString('en')} ${this.unit} ${rate.toLocaleString('en')}/s\u001b[K`);
      return;
    }
    this.stream.write(
      `\r${this.label} [${bar}] ${Math.floor(fraction * 100)}% ${this.done.toLocaleString('en')}/${this.total.toLocaleString('en')} ${this.unit} ${rate.toLocaleString('en')}/s\u001b[K`,
    );
  }

  finish(): void {
    if (!this.enabled) return;
    this.draw();
    this.stream.write('\n');
  }
}
