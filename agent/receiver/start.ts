import type { KeyExchange } from '../keys/x25519.ts';
import { AgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { LoadedConfig } from '../config/load.ts';
import { loadPrivateKey } from '../keys/keys.ts';
import type { Consumer } from '../contracts/sink.ts';
import { configPaths } from '../config/paths.ts';
import { preflightSink, withEmbeddedUrl } from '../hosting/driver-setup.ts';
import { driverEnv } from '../hosting/driver-env.ts';
import { Telemetry } from '../telemetry/registry.ts';
import { DeadLetterStore } from './dead-letter.ts';
import { DedupState } from './dedup.ts';
import { limitsOf } from './heap.ts';
import { PoisonHandling } from './poison.ts';
import type { RecordOutput } from './output.ts';
import { createOutput } from './outputs/index.ts';
import { loadDevices } from './devices.ts';
import { Receiver } from './receiver.ts';
import { CentreAcknowledger } from './acks.ts';

export interface RunningReceiver {
  receiver: Receiver;
  /** Resolves when the output failed: the receiver acknowledges nothing more; stop it and exit non-zero. */
  failed: Promise<AgentError>;
  close(): Promise<void>;
}

/** Builds the receiver from the config's `receiver` section and starts consuming. */
export async function startReceiver(
  kx: KeyExchange,
  loaded: LoadedConfig,
  log: Logger,
  options: { embeddedUrl?: string; output?: RecordOutput; telemetry?: Telemetry; signal?: AbortSignal } = {},
): Promise<RunningReceiver> {
  const section = loaded.config.receiver;
  const input = section?.input ?? loaded.config.sink;
  if (!section || !input)
    throw new AgentError('CONFIG_INVALID', `${loaded.origin}: receiver: needs a receiver section with an input (or a sink section to read from)`);
  const paths = configPaths(loaded);
  const centreKeys = [section.private_key, ...section.extra_private_keys].map((p) => loadPrivateKey(kx, paths.fromBase(p)));
  const telemetry = options.telemetry ?? new Telemetry();
  const receiverLog = log.child({ component: 'receiver' });
  const devices = loadDevices(
    kx,
    section.devices.map((d) => ({ id: d.id, files: d.public_keys.map((p) => paths.fromBase(p)) })),
    receiverLog,
    telemetry,
  );
  if (devices.length === 0) log.warn('receiver knows no devices: every batch will be rejected (receiver.devices)');
  const dedup = new DedupState(paths.fromData(section.state), section.dedup_window, {
    epochs: section.dedup_epochs,
    streamsPerDevice: section.max_streams_per_device,
    retentionMs: section.dedup_retention,
  });
  const limits = limitsOf(section);
  // The receiver's name in its records topic: its input's client id or consumer name.
  const named = input.client_id ?? input.consumer_name;
  const outputName = typeof named === 'string' ? named : 'edge-receiver';
  const output =
    options.output ??
    (await createOutput(section, {
      baseDir: paths.baseDir,
      log: receiverLog,
      name: outputName,
      signal: options.signal,
      makeSink: (config) => {
        const sinkConfig = withEmbeddedUrl(config, options.embeddedUrl);
        const env = driverEnv(
          { log: log.child({ component: 'receiver-topic', type: sinkConfig.type }), baseDir: paths.baseDir },
          { kind: 'sink', name: 'receiver_topic' },
          telemetry,
        );
        return loaded.drivers.sink(sinkConfig.type).create(sinkConfig, { ...env, device: outputName });
      },
    }));
  const deadLetters = new DeadLetterStore(paths.fromData(section.dead_letter.path), section.dead_letter.max_bytes);
  const poison = new PoisonHandling(deadLetters, output, receiverLog, telemetry, { retryForMs: section.output_retry_for });
  // The consumer is made below; acknowledgements only flow once it has started.
  let consumer: Consumer | undefined;
  const acks = new CentreAcknowledger(kx, centreKeys, devices, (device, stream, bytes) => consumer?.sendAck?.(device, stream, bytes), telemetry);
  const receiver = new Receiver(kx, centreKeys, devices, dedup, output, receiverLog, undefined, {
    maxEnvelopeBytes: limits.maxEnvelopeBytes,
    limits,
    telemetry,
    poison,
    onTaken: (header) => acks.taken(header),
  });
  await preflightSink(loaded.drivers, input, section.input ? 'receiver.input' : 'sink (read by the receiver)');
  const inputConfig = withEmbeddedUrl(input, options.embeddedUrl);
  const inputEnv = driverEnv(
    { log: log.child({ component: 'receiver-input', type: inputConfig.type }), baseDir: paths.baseDir },
    { kind: 'receiver_input', name: inputConfig.type },
    telemetry,
  );
  consumer = await loaded.drivers.sink(inputConfig.type).createConsumer(inputConfig, {
    ...inputEnv,
    clientName: 'edge-receiver',
    maxMessageBytes: limits.maxEnvelopeBytes,
  });
  const started = consumer;
  await started.start((message) => receiver.handle(message));
  return {
    receiver,
    failed: receiver.failed,
    async close() {
      poison.stop();
      acks.close();
      await started.close();
      await output.close();
      dedup.close();
      deadLetters.close();
    },
  };
}
