import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { x25519 } from '../../agent/keys/x25519.ts';
import { writeKeyPair } from '../../agent/keys/keys.ts';
import { parseConfig } from '../../agent/app.ts';
import type { LoadedConfig } from '../../agent/config/load.ts';

/** A temp directory with a device and a centre key pair, removed by `cleanup`. */
export async function workspace(prefix = 'edge-test-'): Promise<{ dir: string; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeKeyPair(x25519, join(dir, 'keys', 'device'));
  writeKeyPair(x25519, join(dir, 'keys', 'centre'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A sink that is not the default MQTT one: the body of its `sink:` section and of the receiver's `input:`
 * (each a YAML mapping starting with a newline, indented by 4 spaces), the receiver reading the sink by default. */
export interface SinkYaml {
  sink: string;
  input?: string;
}

/**
 * The YAML of an agent + receiver config, with sections overridable: over an MQTT broker at `sink` when it is a
 * URL, otherwise over the sink it describes (Kafka, Pulsar).
 */
export function agentYaml(sink: string | SinkYaml, parts: { sources: string; device?: string; extra?: string; state?: string; writeTimeout?: string }): string {
  const device = parts.device ?? 'gw-test';
  const sinkBody =
    typeof sink === 'string'
      ? `
  type: mqtt
  url: ${sink}
  reconnect: { initial_delay: 50ms, max_delay: 500ms }`
      : sink.sink;
  const input =
    typeof sink === 'string'
      ? ''
      : `
  input:${sink.input ?? sink.sink}`;
  return `
device:
  id: ${device}
data_dir: data
log:
  level: warn
keys:
  device_private: keys/device.key
  centre_public: keys/centre.pub
sources:
${parts.sources}
sink:${sinkBody}
sender:
  retry_initial_delay: 50ms
  retry_max_delay: 500ms
  write_timeout: ${parts.writeTimeout ?? '5s'}
receiver:${input}
  private_key: keys/centre.key
  devices:
    - id: ${device}
      public_keys: [keys/device.pub]
  state: ${parts.state ?? 'receiver.db'}
${parts.extra ?? ''}`;
}

export function writeConfig(dir: string, yaml: string, name = 'agent.yaml'): LoadedConfig & { path: string; yaml: string } {
  const path = join(dir, name);
  writeFileSync(path, yaml);
  return { ...parseConfig(yaml, path, dir), path, yaml };
}
