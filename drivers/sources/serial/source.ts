import type { SerialPort } from 'serialport';
import { AgentError, describeError, type AgentRecord, type ServiceSource, type SourceContext } from '../../../agent/sdk/index.ts';
import { sample } from './sample.ts';
import { Reconnector } from '../../common/reconnect.ts';
import { createDecoder, isEmptyLine, type Decoder } from './decode.ts';
import { createFramer, type Framer } from './framer.ts';
import { RecordGroups } from './groups.ts';
import type { SerialOptions } from './options.ts';
import { closePort, describeSpec, openPort, resolvePath, type DeviceSpec, type ListPorts } from '../../common/serial-port.ts';

/**
 * One serial port as a service source. Bytes are cut into frames, frames decoded into records, records
 * handed to the queue in small groups. Bad input is counted and logged at a bounded rate and never stops the
 * source. When the device vanishes (unplugged adapter, closed pty) the source stays up and reopens it with
 * backoff; the cursor (bytes consumed, across restarts) is informational, since a serial line cannot replay.
 */
/** What a record counts against max_pending_bytes besides its frame: its object, ts and port fields. */
const RECORD_OVERHEAD = 128;

export class SerialSource implements ServiceSource {
  private readonly config: SerialOptions;
  private readonly spec: DeviceSpec;
  private readonly list: ListPorts;
  private readonly abort = new AbortController();
  private readonly decoder: Decoder;
  private ctx!: SourceContext;
  private signal!: AbortSignal;
  private framer!: Framer;
  private groups!: RecordGroups;
  private reconnector!: Reconnector;
  private cursorBase = 0;
  private port: SerialPort | undefined;
  private portPath = '';
  private paused = false;
  private reopening: Promise<void> | undefined;

  constructor(config: SerialOptions, spec: DeviceSpec, list: ListPorts) {
    this.config = config;
    this.spec = spec;
    this.list = list;
    this.decoder = createDecoder(config.framing);
  }

  async start(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    this.signal = AbortSignal.any([ctx.signal, this.abort.signal]);
    this.reconnector = new Reconnector({ initialMs: this.config.reopen_initial_delay, maxMs: this.config.reopen_max_delay });
    this.cursorBase = typeof ctx.cursor === 'number' ? ctx.cursor : 0;
    this.framer = createFramer(this.config.framing, this.config.max_frame_bytes, {
      frame: (bytes, consumed) => this.onFrame(bytes, consumed),
      discard: (reason, bytes) => this.reject(reason, sample(bytes), 'discarded bad bytes from the serial line'),
    });
    this.groups = new RecordGroups(
      {
        batchRecords: this.config.batch_records,
        flushMs: this.config.flush_interval,
        maxPending: this.config.max_pending,
        maxPendingBytes: this.config.max_pending_bytes,
      },
      {
        emit: (records, cursor) => ctx.emit(records, cursor),
        backpressure: (full) => this.setPaused(full),
        failed: (err) => {
          this.abort.abort();
          ctx.fail(err);
        },
      },
    );
    try {
      await this.open();
    } catch (err) {
      throw new AgentError('SOURCE_FAILED', `serial source ${ctx.name}: cannot open ${describeSpec(this.spec)}: ${describeError(err)}`, {
        cause: err,
        retryable: true,
      });
    }
  }

  private async open(): Promise<void> {
    const path = await resolvePath(this.spec, this.list);
    const port = await openPort(path, this.config);
    if (this.signal.aborted) {
      await closePort(port);
      return;
    }
    this.port = port;
    this.portPath = path;
    this.framer.reopened();
    // Keep a listener for the port's whole life: an 'error' without one would crash the process.
    port.on('error', (err) => this.gone(port, err));
    port.on('close', (err: unknown) => this.gone(port, err));
    port.on('data', (chunk: Buffer) => this.onBytes(chunk));
    if (this.paused) port.pause();
    this.ctx.log.info({ port: path }, 'serial port open');
  }

  private onBytes(chunk: Buffer): void {
    this.ctx.counters.add('bytes', chunk.length);
    this.framer.push(chunk);
  }

  private onFrame(bytes: Buffer, consumed: number): void {
    if (isEmptyLine(this.config.framing, bytes)) return;
    const decoded = this.decoder(bytes);
    if (!decoded.ok) {
      this.reject(decoded.reason, { detail: decoded.detail, ...sample(bytes) }, 'rejected a bad frame from the serial line');
      return;
    }
    const ts = Date.now();
    // The source's own ts and port win over same-named fields from the device, so every record has both.
    const record: AgentRecord = { ts, port: this.portPath, ...decoded.fields };
    record.ts = ts;
    record.port = this.portPath;
    this.ctx.counters.add('frames');
    // A record holds about its frame (decoded fields, or its hex: twice the bytes) and a fixed cost.
    this.groups.add(record, this.cursorBase + consumed, RECORD_OVERHEAD + 2 * bytes.length);
  }

  /** Bad input: `bad_frames` and its reason counted, logged at a bounded rate (the reporter counts the reason). */
  private reject(reason: string, fields: Record<string, unknown>, message: string): void {
    this.ctx.counters.add('bad_frames');
    this.ctx.problems.report(reason, message, { port: this.portPath, ...fields });
  }

  private setPaused(paused: boolean): void {
    this.paused = paused;
    if (paused) this.port?.pause();
    else this.port?.resume();
  }

  /** The port closed or failed under us: keep what was framed, and reopen in the background. */
  private gone(port: SerialPort, err: unknown): void {
    if (this.port !== port) return;
    this.port = undefined;
    port.removeAllListeners('data');
    void closePort(port);
    if (this.signal.aborted) return;
    this.ctx.counters.add('disconnects');
    this.ctx.log.warn({ port: this.portPath, err: err === undefined || err === null ? 'closed' : describeError(err) }, 'serial port lost; reopening');
    this.groups.flush();
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    if (this.signal.aborted) return;
    this.reconnector.schedule(() => {
      this.reopening = this.reopen();
      return this.reopening;
    });
  }

  /** One reopen attempt; another is scheduled with backoff while the device stays away. */
  private async reopen(): Promise<void> {
    if (this.signal.aborted) return;
    const attempts = this.reconnector.attempt;
    try {
      await this.open();
      if (this.port) {
        this.reconnector.succeeded(); // a later loss starts again from reopen_initial_delay
        this.ctx.counters.add('reconnects');
        this.ctx.log.info({ port: this.portPath, attempts }, 'serial port back');
      }
    } catch (err) {
      this.ctx.problems.report('reopen_errors', 'serial port still gone', { device: describeSpec(this.spec), attempt: attempts, err: describeError(err) });
      this.scheduleReopen();
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.reconnector?.cancel();
    const port = this.port;
    this.port = undefined;
    if (port) await closePort(port);
    await this.reopening;
    await this.groups?.drain();
  }
}
