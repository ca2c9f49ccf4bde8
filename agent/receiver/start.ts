import { resolve } from 'node:path';
import type sodiumModule from 'libsodium-wrappers';
import { AgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { LoadedConfig } from '../config/load.ts';
import { loadPrivateKey, loadPublicKey } from '../keys/keys.ts';
import type { Consumer } from '../contracts/sink.ts';
import { configPaths } from '../config/paths.ts';
import { preflightSink, withEmbeddedUrl } from '../hosting/driver-setup.ts';
import { driverEnv } from '../hosting/driver-env.ts';
import type { Telemetry } from '../telemetry/registry.ts';
import { DedupState } from './dedup.ts';
import { jsonLinesOutput, type RecordOutput } from './output.ts';
import { Receiver } from './receiver.ts';

export interface RunningReceiver {
  receiver: Receiver;
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
  const devices = section.devices.map((d) => ({ id: d.id, publicKeys: d.public_keys.map((p) => loadPublicKey(paths.fromBase(p))) }));
  if (devices.length === 0) log.warn('receiver knows no devices: every batch will be rejected (receiver.devices)');
  const dedup = new DedupState(paths.fromData(section.state), section.dedup_window);
  const output = options.output ?? (await jsonLinesOutput(section.output === '-' ? '-' : resolve(paths.baseDir, section.output)));
  const receiver = new Receiver(sodium, centreKeys, devices, dedup, output, log.child({ component: 'receiver' }));
  await preflightSink(loaded.drivers, input, section.input ? 'receiver.input' : 'sink (read by the receiver)');
  const inputConfig = withEmbeddedUrl(input, options.embeddedUrl);
  const inputEnv = driverEnv(
    { log: log.child({ component: 'receiver-input', type: inputConfig.type }), baseDir: paths.baseDir },
    { kind: 'receiver_input', name: inputConfig.type },
    options.telemetry,
  );
  const consumer: Consumer = loaded.drivers.sink(inputConfig.type).createConsumer(inputConfig, { ...inputEnv, clientName: 'edge-receiver' });
  await consumer.start((message) => receiver.handle(message));
  return {
    receiver,
    async close() {
      await consumer.close();
      await output.close();
      dedup.close();
    },
  };
}
