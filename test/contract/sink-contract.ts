import { test, after } from 'node:test';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { silentLogger } from '../../agent/log.ts';
import { configSchemas } from '../../agent/app.ts';
import { isAgentError, type IncomingMessage, type OutgoingBatch, type SinkDriver } from '../../agent/sdk/index.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
const { sinkSchema } = configSchemas();

/** A real broker the contract can stop and start again. */
export interface ContractBroker {
  /** The driver options pointing sink and consumer at this broker. */
  options: Record<string, unknown>;
  stop(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

// Each call site's batches belong to a fresh epoch: a sink with broker-side deduplication must not take a
// later test's warm-up batch for a repeat of an earlier one.
let epoch = randomBytes(8).toString('hex');
function batch(seq: number, stream = 'contract'): OutgoingBatch {
  const bytes = new Uint8Array(64 + seq);
  bytes.fill(seq % 251);
  if (seq === 0) epoch = randomBytes(8).toString('hex');
  return { device: 'gw-contract', stream, epoch, seq, count: 1, bytes };
}

class Inbox {
  readonly messages: IncomingMessage[] = [];
  private waiters: (() => void)[] = [];
  failNext = 0;
  handler = async (m: IncomingMessage) => {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error("the receiver's own storage failed");
    }
    this.messages.push(m);
    for (const w of this.waiters.splice(0)) w();
  };
  async waitFor(n: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.messages.length} of ${n} messages arrived`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }
}

/** The behaviour every sink driver (and its centre-side consumer) owes the runtime. */
export function sinkContract(driver: SinkDriver, startBroker: () => Promise<ContractBroker>): void {
  let broker: ContractBroker;
  const env = driverEnv({ log: silentLogger, baseDir: process.cwd() });
  const ready = startBroker().then((b) => (broker = b));
  after(async () => broker?.close());

  test(`contract(${driver.type}): validates its options strictly`, async () => {
    await ready;
    assert.ok(driver.summary.length > 10);
    assert.equal(sinkSchema.safeParse({ type: driver.type, ...broker.options }).success, true);
    assert.equal(sinkSchema.safeParse({ type: driver.type, ...broker.options, no_such_option: true }).success, false);
  });

  /**
   * A consumer and a connected sink, with one warm-up batch through: the consumer subscribes once connected,
   * and a first message proves the subscription is in place.
   */
  async function connectedPair(clientName: string) {
    await ready;
    const options = driver.options.parse(broker.options);
    const inbox = new Inbox();
    const consumer = await driver.createConsumer(options, { ...env, clientName });
    await consumer.start(inbox.handler);
    const sink = await driver.create(options, { ...env, device: 'gw-contract' });
    await sink.connect();
    await sink.waitConnected(AbortSignal.timeout(10_000));
    assert.equal(sink.connected, true);
    await sink.write(batch(0, 'warmup'));
    await inbox.waitFor(1);
    return { inbox, consumer, sink };
  }

  test(`contract(${driver.type}): a write resolves once acknowledged and the consumer gets the exact bytes`, async () => {
    const { inbox, consumer, sink } = await connectedPair('contract-consumer-1');
    const sent = [1, 2, 3].map((i) => batch(i));
    await Promise.all(sent.map((b) => sink.write(b)));
    await inbox.waitFor(4);
    const got = inbox.messages.slice(1);
    assert.deepEqual(got.map((m) => Buffer.from(m.bytes)).sort(Buffer.compare), sent.map((b) => Buffer.from(b.bytes)).sort(Buffer.compare));
    for (const m of got) assert.match(m.origin, /gw-contract/);
    await sink.close();
    await consumer.close();
  });

  test(`contract(${driver.type}): a consumer failure leaves the message unacknowledged, and it comes again`, async () => {
    const { inbox, consumer, sink } = await connectedPair('contract-consumer-2');
    inbox.failNext = 1;
    await sink.write(batch(7));
    await inbox.waitFor(2);
    assert.deepEqual(Buffer.from(inbox.messages[1]!.bytes), Buffer.from(batch(7).bytes));
    await sink.close();
    await consumer.close();
  });

  test(`contract(${driver.type}): with the broker down a write fails as retryable, and the sink reconnects by itself, counted`, async () => {
    await ready;
    const options = driver.options.parse(broker.options);
    // Counters of its own: the reconnect is this sink's (edge_sink_events_total{event="reconnects"}).
    const own = driverEnv({ log: silentLogger, baseDir: process.cwd() });
    const sink = await driver.create(options, { ...own, device: 'gw-contract' });
    // Closed whatever happens: a sink left open keeps probing, and the test process with it.
    try {
      await sink.connect();
      await sink.waitConnected(AbortSignal.timeout(10_000));
      await broker.stop();
      const err = await sink.write(batch(9)).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isAgentError(err), `expected an AgentError, got ${String(err)}`);
      assert.equal(err.retryable, true);
      await broker.restart();
      await sink.waitConnected(AbortSignal.timeout(20_000));
      assert.equal(sink.connected, true);
      await sink.write(batch(10));
    } finally {
      await sink.close();
    }
    const reconnects = own.counters.snapshot().reconnects ?? 0;
    assert.ok(reconnects >= 1, `the reconnect is counted (${reconnects})`);
  });

  test(`contract(${driver.type}): close returns even while the broker is unreachable`, async () => {
    await ready;
    const options = driver.options.parse(broker.options);
    const sink = await driver.create(options, { ...env, device: 'gw-contract' });
    await sink.connect();
    await sink.waitConnected(AbortSignal.timeout(10_000));
    await broker.stop();
    await sink.close();
    await broker.restart();
  });
}
