/**
 * The parts of a running agent, each started from its part of the config and stopped on its own, so a new
 * configuration restarts only what it changes: the core (keys, embedded broker, queue, receiver), the
 * delivery (sink and sender) and each source.
 */
import { getRandomValues } from 'node:crypto';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { SourceConfig } from '../config/schema.ts';
import { type KeyExchange, x25519 } from '../keys/x25519.ts';
import { seal } from '../envelope/seal.ts';
import { NONCE_BYTES } from '../envelope/header.ts';
import { deviceAckKey, deviceSendKey, keyId, loadPrivateKey, loadUsablePublicKey } from '../keys/keys.ts';
import { generateMissingKeys } from '../keys/provision.ts';
import { Queue } from '../queue/queue.ts';
import { queueOptions } from './queue-options.ts';
import type { EmbeddedBroker } from '../broker/embedded.ts';
import { readBrokerPassword } from '../broker/credentials.ts';
import type { RunningReceiver } from '../receiver/start.ts';
import type { RecordOutput } from '../receiver/output.ts';
import type { Sink } from '../contracts/sink.ts';
import { configPaths } from '../config/paths.ts';
import { Sender } from './sender.ts';
import { CentreAckVerifier } from './centre-acks.ts';
import { preflightSink, withEmbeddedUrl } from '../hosting/driver-setup.ts';
import { driverEnv } from '../hosting/driver-env.ts';
import type { Telemetry } from '../telemetry/registry.ts';
import { SourceRunner } from './source-runner.ts';
import { EmitBudget, emitBudgetLimits } from './emit-budget.ts';
import { deliveryKey, sourceKey, wholeKey } from './config-diff.ts';
import { startGovernor, withReconnectFloor } from './governed-delivery.ts';
import type { Governor } from '../governor/governor.ts';
import { ungovernedSinkWire } from '../governor/wire-meter.ts';

/** What every other part is built on; only a whole restart replaces it. */
export interface Core {
  readonly key: string;
  readonly loaded: LoadedConfig;
  readonly device: string;
  readonly baseDir: string;
  readonly queuePath: string;
  readonly kx: KeyExchange;
  readonly keys: { device: ReturnType<typeof loadPrivateKey>; centrePublic: Uint8Array; send: Uint8Array; deviceId: Uint8Array; centreId: Uint8Array };
  readonly broker: EmbeddedBroker | undefined;
  readonly queue: Queue;
  readonly receiver: RunningReceiver | undefined;
  /** One byte budget for the records all sources emitted and the queue has not committed yet; kept across source restarts. */
  readonly budget: EmitBudget;
  close(): Promise<void>;
}

export interface Delivery {
  readonly key: string;
  readonly sink: Sink;
  readonly sender: Sender;
  readonly governor: Governor | undefined;
  /** Stops taking batches, waits up to `graceMs` for writes in flight, closes the sink (what was in flight goes again). */
  stop(graceMs?: number): Promise<void>;
}

export interface RunningSource {
  readonly key: string;
  readonly runner: SourceRunner;
}

/** Runs the steps in reverse order, each one's failure logged and the next still run. */
async function unwind(steps: (() => Promise<void> | void)[], log: Logger): Promise<void> {
  for (const step of steps.reverse()) {
    try {
      await step();
    } catch (err) {
      log.warn({ err: describeError(err) }, 'shutdown step failed');
    }
  }
}

export async function openCore(loaded: LoadedConfig, log: Logger, telemetry: Telemetry, receiverOutput: RecordOutput | undefined): Promise<Core> {
  const { config } = loaded;
  const paths = configPaths(loaded);
  const device = config.device!.id;
  if (config.receiver?.enabled && config.receiver.input) await preflightSink(loaded.drivers, config.receiver.input, 'receiver.input');
  const kx = x25519;
  if (config.keys.generate_if_missing) generateMissingKeys(kx, paths, log);
  const deviceKeys = loadPrivateKey(kx, paths.devicePrivate);
  const centrePublic = loadUsablePublicKey(kx, paths.centrePublic);
  const keys = {
    device: deviceKeys,
    centrePublic,
    send: deviceSendKey(kx, deviceKeys, centrePublic),
    deviceId: keyId(deviceKeys.publicKey),
    centreId: keyId(centrePublic),
  };

  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    let broker: EmbeddedBroker | undefined;
    if (config.broker.embedded) {
      const { host, port, username, max_packet_bytes, max_queued_bytes_per_client, max_queued_bytes, max_retained_messages, max_retained_bytes } =
        config.broker;
      const { max_unreleased_bytes_per_client, max_unreleased_bytes, max_subscriptions_per_client, max_connections } = config.broker;
      const credentials = username === undefined ? undefined : { username, password: readBrokerPassword(config.broker, paths.baseDir) };
      // Loaded only when configured: most gateways use an outside broker, and its library costs start-up time.
      const { startEmbeddedBroker } = await import('../broker/embedded.ts');
      broker = await startEmbeddedBroker(host, port, {
        maxPacketBytes: max_packet_bytes,
        credentials,
        queueLimits: { maxBytesPerClient: max_queued_bytes_per_client, maxBytes: max_queued_bytes },
        retainedLimits: { maxCount: max_retained_messages, maxBytes: max_retained_bytes },
        unreleasedLimits: { maxBytesPerClient: max_unreleased_bytes_per_client, maxBytes: max_unreleased_bytes },
        maxSubscriptionsPerClient: max_subscriptions_per_client,
        maxConnections: max_connections,
        telemetry,
        log: log.child({ component: 'broker' }),
      });
      cleanups.push(() => broker!.close());
      log.info({ url: broker.url }, 'embedded MQTT broker listening');
    }
    const queue = Queue.open({ ...queueOptions(config, paths.queue, log.child({ component: 'queue' })), telemetry });
    cleanups.push(() => queue.close());
    let receiver: RunningReceiver | undefined;
    if (config.receiver?.enabled) {
      // Loaded only when configured, as the embedded broker: most agents run no receiver.
      const { startReceiver } = await import('../receiver/start.ts');
      receiver = await startReceiver(kx, loaded, log, { embeddedUrl: broker?.url, output: receiverOutput, telemetry });
      cleanups.push(() => receiver!.close());
    }
    const budget = new EmitBudget(emitBudgetLimits(config.sources.length), () => void queue.flush());
    log.info({ emit_budget: budget.limits }, 'records in flight from sources are bounded');
    return {
      key: wholeKey(config),
      loaded,
      device,
      baseDir: paths.baseDir,
      queuePath: paths.queue,
      kx,
      keys,
      broker,
      queue,
      receiver,
      budget,
      close: () => unwind(cleanups, log),
    };
  } catch (err) {
    await unwind(cleanups, log);
    throw err;
  }
}

/** The sink and the sender for `loaded`'s sink and sender settings, on the core's queue. */
export async function startDelivery(core: Core, loaded: LoadedConfig, log: Logger, telemetry: Telemetry): Promise<Delivery> {
  const { config, drivers } = loaded;
  const { kx, queue, keys, device } = core;
  await preflightSink(drivers, config.sink!, 'sink');
  const governor = await startGovernor(loaded, queue, log, telemetry);
  const sinkConfig = withReconnectFloor(withEmbeddedUrl(config.sink!, core.broker?.url), governor);
  const sinkEnv = driverEnv(
    { log: log.child({ component: 'sink', type: sinkConfig.type }), baseDir: core.baseDir },
    { kind: 'sink', name: sinkConfig.type },
    telemetry,
  );
  const sink: Sink = await drivers
    .sink(sinkConfig.type)
    .create(sinkConfig, { ...sinkEnv, device, wire: governor?.sinkWire ?? ungovernedSinkWire(telemetry), centreOnline: governor?.centreOnline });
  try {
    await sink.connect();
  } catch (err) {
    await sink.close().catch(() => {});
    governor?.stop();
    throw err;
  }
  const sender = new Sender(
    queue,
    sink,
    // A fresh random nonce at every seal: a re-sent batch keeps its sequence and records, but the key and
    // nonce pair is never used twice (the body could differ if, say, the compression setting changed).
    (batch) =>
      seal(
        {
          device,
          stream: batch.stream,
          epoch: queue.epoch,
          seq: batch.seq,
          count: batch.count,
          created: batch.created,
          compression: batch.compression,
          deviceKeyId: keys.deviceId,
          centreKeyId: keys.centreId,
          nonce: getRandomValues(new Uint8Array(NONCE_BYTES)),
        },
        batch.body,
        keys.send,
      ),
    {
      device,
      epoch: Buffer.from(queue.epoch).toString('hex'),
      maxInFlight: config.sender.max_in_flight,
      maxInFlightBytes: config.sender.max_in_flight_bytes,
      writeTimeoutMs: config.sender.write_timeout,
      retry: { initialMs: config.sender.retry_initial_delay, maxMs: config.sender.retry_max_delay },
      centre: sink.centreAcks
        ? {
            verifier: new CentreAckVerifier(
              {
                device,
                epoch: queue.epoch,
                deviceKeyId: keys.deviceId,
                centreKeyId: keys.centreId,
                macKey: deviceAckKey(kx, keys.device, keys.centrePublic),
              },
              telemetry,
              log.child({ component: 'sender' }),
            ),
            timeoutMs: config.sender.centre_ack_timeout,
            maxTimeoutMs: config.sender.centre_ack_max_timeout,
          }
        : undefined,
      governor,
    },
    log.child({ component: 'sender' }),
    telemetry,
  );
  sender.start();
  return {
    key: deliveryKey(config),
    sink,
    sender,
    governor,
    stop: async (graceMs?: number) => {
      await unwind([() => governor?.stop(), () => sink.close(), () => sender.stop(graceMs)], log);
    },
  };
}

/** One source's runner on the core's queue and budget; resolves once its first start attempt settled. */
export async function startSource(core: Core, loaded: LoadedConfig, source: SourceConfig, log: Logger, telemetry: Telemetry): Promise<RunningSource> {
  const runner = new SourceRunner(
    loaded.drivers.source(source.type),
    { ...withEmbeddedUrl(source, core.broker?.url), stream: source.stream ?? source.name },
    core.queue,
    { log: log.child({ source: source.name }), baseDir: core.baseDir },
    { initialMs: 1_000, maxMs: 60_000 },
    log.child({ source: source.name }),
    telemetry,
    core.budget,
  );
  const running = { key: sourceKey(source), runner };
  try {
    await runner.start();
  } catch (err) {
    await runner.stop();
    throw err;
  }
  return running;
}
