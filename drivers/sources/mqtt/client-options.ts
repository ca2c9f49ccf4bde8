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
    username: options.username,
    password: readPassword(options, baseDir, 'mqtt source', 'CONFIG_INVALID'),
  };
  if (options.protocol_version === 5) {
    result.properties = {
      // The broker's window of unacknowledged QoS 1 messages: messages keep flowing while earlier ones await
      // their commit, and no more than this many wait in memory.
      receiveMaximum: options.max_pending,
      // MQTT 5 ends a session at disconnect unless it is given a lifetime.
      ...(persistent ? { sessionExpiryInterval: Math.round(options.session_expiry / 1000) } : {}),
    };
  }
  if (options.tls) Object.assign(result, tlsConnectionOptions(options.tls, baseDir, 'mqtt source'));
  return result;
}
