import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { LoadedConfig } from '../config/load.ts';
import { sodium as loadSodium } from '../envelope/sodium.ts';
import { seal } from '../envelope/seal.ts';
import { deviceAckKey, deviceSendKey, keyId, loadPrivateKey, loadUsablePublicKey } from '../keys/keys.ts';
import { generateMissingKeys } from '../keys/provision.ts';
import { Queue, type QueueStats } from '../queue/queue.ts';
import { queueOptions } from './queue-options.ts';
import type { RecoveryReport } from '../queue/recovery.ts';
import type { EmbeddedBroker } from '../broker/embedded.ts';
import { readBrokerPassword } from '../broker/credentials.ts';
import { startReceiver, type RunningReceiver } from '../receiver/start.ts';
import type { RecordOutput } from '../receiver/output.ts';
import type { Sink } from '../contracts/sink.ts';
import { configPaths } from '../config/paths.ts';
import { Sender, type SenderStats } from './sender.ts';
import { CentreAckVerifier } from './centre-acks.ts';
import { preflightSink, withEmbeddedUrl } from '../hosting/driver-setup.ts';
import { driverEnv } from '../hosting/driver-env.ts';
import { Telemetry } from '../telemetry/registry.ts';
import { SourceRunner } from './source-runner.ts';
import { EmitBudget, emitBudgetLimits } from './emit-budget.ts';

export interface AgentStatus {
  queue: QueueStats;
  /** Set when the queue file found at start was unusable and was replaced (quarantined and salvaged). */
  recovery: RecoveryReport | undefined;
  sender: SenderStats;
  sources: Record<string, { state: string; counters: Record<string, number> }>;
  sink: { connected: boolean };
}

/** A running agent: sources → queue → sender → sink, and optionally the embedded broker and receiver. */
export interface RunningAgent {
  readonly queue: Queue;
  readonly sender: Sender;
  readonly receiver: RunningReceiver | undefined;
  /** The registry every part of this agent reports into. */
  readonly telemetry: Telemetry;
  status(): AgentStatus;
  /** The runner of the source named `name` (remote control pauses and resumes it). */
  source(name: string): SourceRunner | undefined;
  stop(): Promise<void>;
}

export async function startAgent(
  loaded: LoadedConfig,
  log: Logger,
  options: { receiverOutput?: RecordOutput; telemetry?: Telemetry } = {},
): Promise<RunningAgent> {
  const { config, drivers } = loaded;
  const telemetry = options.telemetry ?? new Telemetry();
  const paths = configPaths(loaded);
  const device = config.device!.id;
  await preflightSink(drivers, config.sink!, 'sink');
  if (config.receiver?.enabled && config.receiver.input) await preflightSink(drivers, config.receiver.input, 'receiver.input');
  const sodium = await loadSodium();

  if (config.keys.generate_if_missing) generateMissingKeys(sodium, paths, log);
  const deviceKeys = loadPrivateKey(sodium, paths.devicePrivate);
  const centrePublic = loadUsablePublicKey(sodium, paths.centrePublic);
  const sendKey = deviceSendKey(sodium, deviceKeys, centrePublic);
  const deviceKeyId = keyId(deviceKeys.publicKey);
  const centreKeyId = keyId(centrePublic);

  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.warn({ err: describeError(err) }, 'shutdown step failed');
      }
    }
  };

  try {
    let broker: EmbeddedBroker | undefined;
    if (config.broker.embedded) {
      const { host, port, username, max_packet_bytes } = config.broker;
      const credentials = username === undefined ? undefined : { username, password: readBrokerPassword(config.broker, paths.baseDir) };
      // Loaded only when configured: most gateways use an outside broker, and its library costs start-up time.
      const { startEmbeddedBroker } = await import('../broker/embedded.ts');
      broker = await startEmbeddedBroker(host, port, { maxPacketBytes: max_packet_bytes, credentials, log: log.child({ component: 'broker' }) });
      cleanups.push(() => broker!.close());
      log.info({ url: broker.url }, 'embedded MQTT broker listening');
    }

    const queue = Queue.open({ ...queueOptions(config, paths.queue, log.child({ component: 'queue' })), telemetry });
    cleanups.push(() => queue.close());

    let receiver: RunningReceiver | undefined;
    if (config.receiver?.enabled) {
      receiver = await startReceiver(sodium, loaded, log, { embeddedUrl: broker?.url, output: options.receiverOutput, telemetry });
      cleanups.push(() => receiver!.close());
    }

    const sinkConfig = withEmbeddedUrl(config.sink!, broker?.url);
    const sinkEnv = driverEnv(
      { log: log.child({ component: 'sink', type: sinkConfig.type }), baseDir: paths.baseDir },
      { kind: 'sink', name: sinkConfig.type },
      telemetry,
    );
    const sink: Sink = drivers.sink(sinkConfig.type).create(sinkConfig, { ...sinkEnv, device });
    await sink.connect();
    cleanups.push(() => sink.close());

    const sender = new Sender(
      queue,
      sink,
      // A fresh random nonce at every seal: a re-sent batch keeps its sequence and records, but the key and
      // nonce pair is never used twice (the body could differ if, say, the compression setting changed).
      (batch) =>
        seal(
          sodium,
          {
            device,
            stream: batch.stream,
            epoch: queue.epoch,
            seq: batch.seq,
            count: batch.count,
            created: batch.created,
            compression: batch.compression,
            deviceKeyId,
            centreKeyId,
            nonce: sodium.randombytes_buf(24),
          },
          batch.body,
          sendKey,
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
                { device, epoch: queue.epoch, deviceKeyId, centreKeyId, macKey: deviceAckKey(sodium, deviceKeys, centrePublic) },
                telemetry,
                log.child({ component: 'sender' }),
              ),
              timeoutMs: config.sender.centre_ack_timeout,
              maxTimeoutMs: config.sender.centre_ack_max_timeout,
            }
          : undefined,
      },
      log.child({ component: 'sender' }),
      telemetry,
    );
    sender.start();
    cleanups.push(() => sender.stop());

    // One byte budget for the records all sources have emitted and the queue has not committed yet.
    const emitBudget = new EmitBudget(emitBudgetLimits(config.sources.length), () => void queue.flush());
    log.info({ emit_budget: emitBudget.limits }, 'records in flight from sources are bounded');
    const runners: SourceRunner[] = [];
    cleanups.push(async () => {
      await Promise.all(runners.map((r) => r.stop()));
      await queue.flush();
    });
    for (const source of config.sources) {
      const runner = new SourceRunner(
        drivers.source(source.type),
        { ...withEmbeddedUrl(source, broker?.url), stream: source.stream ?? source.name },
        queue,
        { log: log.child({ source: source.name }), baseDir: paths.baseDir },
        { initialMs: 1_000, maxMs: 60_000 },
        log.child({ source: source.name }),
        telemetry,
        emitBudget,
      );
      runners.push(runner);
      await runner.start();
    }
    log.info({ device, sources: runners.length, sink: sinkConfig.type, queue: paths.queue }, 'agent running');

    return {
      queue,
      sender,
      receiver,
      telemetry,
      status: () => ({
        queue: queue.stats(),
        recovery: queue.recovery,
        sender: sender.stats(),
        sources: Object.fromEntries(runners.map((r) => [r.name, { state: r.state, counters: r.counters.snapshot() }])),
        sink: { connected: sink.connected },
      }),
      source: (name) => runners.find((r) => r.name === name),
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
