import type { IClientOptions } from 'mqtt';
import { readPassword } from '../../common/secrets.ts';
import { tlsConnectionOptions } from '../../common/tls.ts';
import type { MqttOptions } from './options.ts';

/** Translates our config into mqtt.js options. Reconnects are driven by the caller (with jitter), not mqtt.js. */
export function clientOptions(options: MqttOptions, baseDir: string, clientId: string): IClientOptions {
  const result: IClientOptions = {
    clientId,
    protocolVersion: options.protocol_version,
    keepalive: Math.max(1, Math.round(options.keepalive / 1000)),
    connectTimeout: options.connect_timeout,
    reconnectPeriod: 0,
    username: options.username,
    password: readPassword(options, baseDir, 'mqtt sink', 'CONFIG_INVALID'),
    // Each write is bounded by the runtime's window; mqtt.js must not buffer on its own while offline.
    queueQoSZero: false,
    // Otherwise mqtt-packet keeps a Buffer for every packet id (65,536 of them, 6.5 MB of heap for the life of
    // the process): a fifth of the 32 MB old space the executable runs in, paid for in garbage collection.
    writeCache: false,
  };
  if (options.tls) Object.assign(result, tlsConnectionOptions(options.tls, baseDir, 'mqtt sink'));
  return result;
}
