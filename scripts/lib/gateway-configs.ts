import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A gateway as it runs in the field, for tests and benchmarks that measure the agent alone: `run.yaml` (one
 * source into the MQTT sink of `brokerUrl`) and `centre.yaml` (the `receive` command writing every record to
 * `records.jsonl`), both in `dir`, with the key pairs `edge-agent keygen --dir keys` writes there.
 */
export function writeGatewayConfigs(dir: string, o: { brokerUrl: string; deviceId: string; centreClientId: string; source: string }): void {
  writeFileSync(
    join(dir, 'run.yaml'),
    `device: { id: ${o.deviceId} }
data_dir: data
keys: { device_private: keys/device.key, centre_public: keys/centre.pub }
sources:
  - ${o.source}
sink: { type: mqtt, url: "${o.brokerUrl}" }
`,
  );
  writeFileSync(
    join(dir, 'centre.yaml'),
    `device: { id: centre }
data_dir: centre
keys: { device_private: keys/centre.key, centre_public: keys/centre.pub }
receiver:
  input: { type: mqtt, url: "${o.brokerUrl}", client_id: ${o.centreClientId} }
  private_key: keys/centre.key
  devices: [{ id: ${o.deviceId}, public_keys: [keys/device.pub] }]
  output: records.jsonl
`,
  );
}

/**
 * A gateway's plain config, for measuring and making a start: one synthetic source at 10 rec/s into the MQTT
 * sink of `brokerUrl` (it need not connect for "agent running"), keys generated at the first start, no
 * embedded broker, no receiver. The start-up benchmark, the build's code cache and its test start this.
 */
export function plainGatewayYaml(deviceId: string, brokerUrl: string): string {
  return `device:
  id: ${deviceId}
data_dir: data
keys:
  device_private: keys/device.key
  centre_public: keys/centre.pub
  generate_if_missing: true
sources:
  - type: synthetic
    name: load
    rate: 10
sink:
  type: mqtt
  url: ${brokerUrl}
`;
}
