/**
 * One sender's connection: frames in, one message handled at a time in arrival order (MLLP is request and
 * answer; a sender that pipelines is read no further than one message ahead), the answer written after the
 * outcome is known. Reading pauses while a message waits, so a connection holds at most one message and the
 * bytes of the next frame.
 */
import type { Socket } from 'node:net';
import { type Frame, MllpFramer, mllpFrame } from './mllp.ts';

export type Handler = (frame: Frame) => Promise<Buffer | undefined>;

export class MllpConnection {
  private readonly socket: Socket;
  private readonly framer: MllpFramer;
  private readonly waiting: Frame[] = [];
  private busy = false;
  private readonly handle: Handler;
  private readonly onStray: (bytes: number) => void;
  closed = false;

  constructor(socket: Socket, maxMessageBytes: number, idleMs: number, handle: Handler, onStray: (bytes: number) => void) {
    this.socket = socket;
    this.handle = handle;
    this.onStray = onStray;
    this.framer = new MllpFramer(maxMessageBytes);
    socket.setNoDelay(true);
    socket.setTimeout(idleMs, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {}); // a sender that drops its connection: 'close' follows
  }

  private data(chunk: Buffer): void {
    const stray = this.framer.strayBytes;
    this.waiting.push(...this.framer.push(chunk));
    if (this.framer.strayBytes > stray) this.onStray(this.framer.strayBytes - stray);
    if (this.waiting.length > 0) this.socket.pause();
    void this.next();
  }

  private async next(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (let frame = this.waiting.shift(); frame && !this.closed; frame = this.waiting.shift()) {
        const answer = await this.handle(frame);
        // No answer: the message could not be committed. Closing (not a negative ACK) makes the sender send
        // it again, to this agent once it is back; an AE or AR would tell it to give the message up.
        if (answer === undefined) {
          this.socket.destroy();
          return;
        }
        if (!this.closed) this.socket.write(mllpFrame(answer));
      }
    } finally {
      this.busy = false;
    }
    if (!this.closed) this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
