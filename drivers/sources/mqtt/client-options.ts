import type { IClientOptions } from 'mqtt';
import { readPassword } from '../../common/secrets.ts';
import { tlsConnectionOptions } from '../../common/tls.ts';
import type { MqttSourceOptions } from './options.ts';

/** Translates the source's config into mqtt.js options for a subscriber whose session outlives the agent. */
export function subscriberClientOptions(options: MqttSourceOptions, baseDir: string, clientId: string): IClientOptions {
  const persistent = options.session === 'persistent';
  const result: IClientOptions = {
    clientId,
    protocolVersion: options.protocol_version,
    clean: !persistent,
    keepalive: Math.max(1, Math.round(options.keepalive / 1000)),
    connectTimeout: options.connect_timeout,
    // Reconnects are driven by the source (drivers/common/reconnect.ts), not by mqtt.js.
    reconnectPeriod: 0,
    // Subscriptions are (re)made by the source at every connect, so a changed topic list takes effect.
    resubscribe: false,
    // Otherwise mqtt-packet keeps a Buffer for every packet id (65,536 of them, 6.5 MB of heap for the life of
    // the process): a fifth of the 32 MB old space the executable runs in, paid for in garbage collection.
    writeCache: false,
    username: options.username,
    password: readPassword(options, baseDir, 'mqtt source', 'CONFIG_INVALID'),
  };
  if (options.protocol_version === 5) {
    result.properties = {
      // The broker's window of unacknowledged QoS 1 messages: messages keep flowing while earlier ones await
      // their commit, and no more than this many wait in memory.
      receiveMaximum: options.max_pending,
      // The broker must not send a packet above this (MQTT 5, 3.1.2.11.4): an oversized message then never
      // reaches the gateway's memory. The headroom keeps the topic (up to 64 KiB) and properties out of the
      // payload's budget; a payload between the cap and this limit is refused on receipt (source.ts).
      maximumPacketSize: packetSizeLimit(options.max_payload_bytes),
      // MQTT 5 ends a session at disconnect unless it is given a lifetime.
      ...(persistent ? { sessionExpiryInterval: Math.round(options.session_expiry / 1000) } : {}),
    };
  }
  if (options.tls) Object.assign(result, tlsConnectionOptions(options.tls, baseDir, 'mqtt source'));
  return result;
}

/** Room in a PUBLISH for its fixed header, topic (at most 65,535 bytes) and properties, beyond the payload. */
const PUBLISH_OVERHEAD = 64 * 1024;

/** The MQTT 5 Maximum Packet Size advertised for a payload cap (the protocol's own maximum at most). */
export function packetSizeLimit(maxPayloadBytes: number): number {
  return Math.min(maxPayloadBytes + PUBLISH_OVERHEAD, 268_435_455);
}
