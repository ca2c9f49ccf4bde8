import type { KeyExchange } from '../keys/x25519.ts';
import { AgentError, describeError, isAgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { loadUsablePublicKey } from '../keys/keys.ts';
import type { Telemetry } from '../telemetry/registry.ts';
import type { KnownDevice } from './receiver.ts';

export interface DeviceEntry {
  id: string;
  /** Key files, as resolved paths. */
  files: string[];
}

/**
 * The devices of `receiver.devices` whose every key file loads and is usable. A device with a bad key
 * (unreadable, not a key file, wrong size, low-order point) is disabled with an error naming it and the file,
 * and counted; the others run. Only when devices are configured and every one is bad does this throw: a
 * receiver that knows no device would acknowledge and drop every batch, while a receiver that is down leaves
 * them in its broker session until the keys are fixed.
 */
export function loadDevices(kx: KeyExchange, entries: DeviceEntry[], log: Logger, telemetry: Telemetry): KnownDevice[] {
  const gauge = telemetry.gauge('edge_receiver_devices', 'Devices in receiver.devices, by state (enabled, or disabled for a bad key)', ['state']);
  const devices: KnownDevice[] = [];
  const errors: string[] = [];
  for (const entry of entries) {
    try {
      devices.push({ id: entry.id, publicKeys: entry.files.map((file) => loadUsablePublicKey(kx, file)) });
    } catch (err) {
      const code = isAgentError(err) ? err.code : 'KEY_INVALID';
      errors.push(`device ${entry.id}: ${describeError(err)}`);
      log.error({ code, device: entry.id, err: describeError(err) }, `device ${entry.id} disabled: bad public key; its batches will be rejected`);
    }
  }
  gauge.set({ state: 'enabled' }, devices.length);
  gauge.set({ state: 'disabled' }, entries.length - devices.length);
  if (entries.length > 0 && devices.length === 0) {
    throw new AgentError('KEY_INVALID', `every device in receiver.devices has a bad public key, so no batch could be accepted:\n  ${errors.join('\n  ')}`);
  }
  return devices;
}
