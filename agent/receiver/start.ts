import { resolve } from 'node:path';
import type sodiumModule from 'libsodium-wrappers';
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
import { jsonLinesOutput, type RecordOutput } from './output.ts';
import { kafkaOutput } from './kafka-output.ts';
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
  sodium: typeof sodiumModule,
  loaded: LoadedConfig,
  log: Logger,
  options: { embeddedUrl?: string; output?: RecordOutput; telemetry?: Telemetry } = {},
): Promise<RunningReceiver> {
  const section = loaded.config.receiver;
  const input = section?.input ?? loaded.config.sink;
  if (!section || !input)
    throw new AgentError('CONFIG_INVALID', `${loaded.origin}: receiver: needs a receiver section with an input (or a sink section to read from)`);
  const paths = configPaths(loaded);
  const centreKeys = [section.private_key, ...section.extra_private_keys].map((p) => loadPrivateKey(sodium, paths.fromBase(p)));
  const telemetry = options.telemetry ?? new Telemetry();
  const receiverLog = log.child({ component: 'receiver' });
  const devices = loadDevices(
    sodium,
    section.devices.map((d) => ({ id: d.id, files: d.public_keys.map((p) => paths.fromBase(p)) })),
    receiverLog,
    telemetry,
  );
  if (devices.length === 0) log.warn('receiver knows no devices: every batch will be rejected (receiver.devices)');
  const dedup = new DedupState(paths.fromData(section.state), section.dedup_window, {
    epochs: section.dedup_epochs,
    streamsPerDevice: section.max_streams_per_device,
  });
  const limits = limitsOf(section);
  const output =
    options.output ??
    (section.kafka_output
      ? kafkaOutput(section.kafka_output, paths.baseDir)
      : await jsonLinesOutput(section.output === '-' ? '-' : resolve(paths.baseDir, section.output)));
  const deadLetters = new DeadLetterStore(paths.fromData(section.dead_letter.path), section.dead_letter.max_bytes);
  const poison = new PoisonHandling(deadLetters, output, receiverLog, telemetry, { retryForMs: section.output_retry_for });
  // The consumer is made below; acknowledgements only flow once it has started.
  let consumer: Consumer | undefined;
  const acks = new CentreAcknowledger(sodium, centreKeys, devices, (device, stream, bytes) => consumer?.sendAck?.(device, stream, bytes), telemetry);
  const receiver = new Receiver(sodium, centreKeys, devices, dedup, output, receiverLog, undefined, {
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
  consumer = loaded.drivers.sink(inputConfig.type).createConsumer(inputConfig, {
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
