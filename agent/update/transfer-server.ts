/**
 * The serving side of a delivery (run by `edge-agent fleet push-update`, which stays connected while devices
 * download): answers each chunk request from the executable file and its chunk list, one chunk read at a time
 * and one publish at a time, so memory is a chunk whatever the file's size and however many devices ask.
 * Counts what it served per device (the progress it shows, and what the resume tests count).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { CdcChunk } from './cdc.ts';
import { correlationOf, encodeFrame, LIST_SLICE_BYTES, parseRequest } from './transfer-protocol.ts';

export interface ServedCount {
  chunks: number;
  /** Bytes of executable data served (the frames' headers not included). */
  bytes: number;
  listBytes: number;
  last: number;
}

export interface ChunkServerOptions {
  exePath: string;
  list: Buffer;
  chunks: readonly CdcChunk[];
  manifestId: string;
  prefix: string;
  publish(topic: string, payload: Buffer, correlationData: Buffer | undefined): Promise<void>;
}

export class ChunkServer {
  private readonly o: ChunkServerOptions;
  private readonly fd: number;
  private chain: Promise<void> = Promise.resolve();
  readonly served = new Map<string, ServedCount>();
  /** Requests that were not for this manifest or not well-formed. */
  ignored = 0;

  constructor(options: ChunkServerOptions) {
    this.o = options;
    this.fd = openSync(options.exePath, 'r');
  }

  /** The topic filter to subscribe to: every device's requests. */
  get filter(): string {
    return `${this.o.prefix}/+/update/req`;
  }

  /** A request message; `responseTopic` and `correlationData` as MQTT 5 carried them. */
  handle(topic: string, payload: Buffer, responseTopic?: string, correlationData?: Buffer): void {
    const levels = topic.split('/');
    const device = levels.at(-3);
    const request = parseRequest(payload);
    if (!device || !request || request.manifest !== this.o.manifestId) {
      this.ignored++;
      return;
    }
    const reply = responseTopic ?? `${this.o.prefix}/${device}/update/chunk`;
    const correlation = correlationData ?? correlationOf(this.o.manifestId);
    this.chain = this.chain.then(async () => {
      for (const index of request.chunks) {
        const data = this.read(request.object, index);
        if (!data) continue;
        await this.o.publish(reply, encodeFrame(this.o.manifestId, request.object, index, data), correlation);
        const count = this.served.get(device) ?? { chunks: 0, bytes: 0, listBytes: 0, last: 0 };
        if (request.object === 'exe') {
          count.chunks++;
          count.bytes += data.length;
        } else count.listBytes += data.length;
        count.last = Date.now();
        this.served.set(device, count);
      }
    });
  }

  private read(object: 'list' | 'exe', index: number): Buffer | undefined {
    if (object === 'list') {
      const start = index * LIST_SLICE_BYTES;
      return start < this.o.list.length ? this.o.list.subarray(start, start + LIST_SLICE_BYTES) : undefined;
    }
    const chunk = this.o.chunks[index];
    if (!chunk) return undefined;
    const data = Buffer.allocUnsafe(chunk.length);
    readSync(this.fd, data, 0, chunk.length, chunk.offset);
    return data;
  }

  /** Resolves when every request taken so far was answered. */
  idle(): Promise<void> {
    return this.chain;
  }

  close(): void {
    closeSync(this.fd);
  }
}
