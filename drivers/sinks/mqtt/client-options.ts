import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { AgentError } from '../../../agent/sdk/index.ts';
import type { MqttOptions } from './options.ts';

function readFile(baseDir: string, path: string, what: string): Buffer {
  try {
    return readFileSync(resolve(baseDir, path));
  } catch (cause) {
    throw new AgentError('CONFIG_INVALID', `cannot read MQTT ${what} file ${path}`, { cause });
  }
}

function password(options: MqttOptions, baseDir: string): string | undefined {
  if (options.password_file) return readFile(baseDir, options.password_file, 'password').toString('utf8').trim();
  if (options.password_env) {
    const value = process.env[options.password_env];
    if (value === undefined) throw new AgentError('CONFIG_INVALID', `environment variable ${options.password_env} (MQTT password) is not set`);
    return value;
  }
  return undefined;
}

/** Translates our config into mqtt.js options. Reconnects are driven by the caller (with jitter), not mqtt.js. */
export function clientOptions(options: MqttOptions, baseDir: string, clientId: string): IClientOptions {
  const tls = options.tls;
  const result: IClientOptions = {
    clientId,
    protocolVersion: options.protocol_version,
    keepalive: Math.max(1, Math.round(options.keepalive / 1000)),
    connectTimeout: options.connect_timeout,
    reconnectPeriod: 0,
    username: options.username,
    password: password(options, baseDir),
    // Each write is bounded by the runtime's window; mqtt.js must not buffer on its own while offline.
    queueQoSZero: false,
  };
  if (tls) {
    result.rejectUnauthorized = tls.reject_unauthorized;
    if (tls.ca) result.ca = readFile(baseDir, tls.ca, 'TLS CA');
    if (tls.cert) result.cert = readFile(baseDir, tls.cert, 'TLS certificate');
    if (tls.key) result.key = readFile(baseDir, tls.key, 'TLS key');
    if (tls.servername) result.servername = tls.servername;
  }
  return result;
}
