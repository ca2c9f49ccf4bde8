/**
 * The embedded defaults `edge-agent run` uses when no config file is given: the whole pipeline on one
 * machine, so a first start shows real records flowing with nothing installed. The `system` source feeds the
 * queue; batches are sealed for a centre key generated on first start, published to an in-process MQTT
 * broker, and read back by the receiver, which prints each decoded record as a JSON line.
 */
export const EMBEDDED_DEFAULTS = `
device:
  id: demo-gateway
data_dir: .edge-agent-demo
keys:
  device_private: .edge-agent-demo/keys/device.key
  centre_public: .edge-agent-demo/keys/centre.pub
  generate_if_missing: true
sources:
  - type: system
    name: system
    interval: 2s
sink:
  type: mqtt
  url: embedded
  protocol_version: 4   # the embedded broker speaks MQTT 3.1.1
  acknowledged_by: centre   # rows leave the queue on the receiver's authenticated acknowledgement
broker:
  embedded: true
receiver:
  enabled: true
  private_key: .edge-agent-demo/keys/centre.key
  devices:
    - id: demo-gateway
      public_keys: [.edge-agent-demo/keys/device.pub]
  output: "-"
`;
