import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { AgentError } from '../../../agent/sdk/index.ts';
import type { MqttSourceOptions } from './options.ts';

function readFile(baseDir: string, path: string, what: string): Buffer {
  try {
    return readFileSync(resolve(baseDir, path));
  } catch (cause) {
    throw new AgentError('CONFIG_INVALID', `cannot read MQTT ${what} file ${path}`, { cause });
  }
}

function password(options: MqttSourceOptions, baseDir: string): string | undefined {
  if (options.password_file) return readFile(baseDir, options.password_file, 'password').toString('utf8').trim();
  if (options.password_env) {
    const value = process.env[options.password_env];
    if (value === undefined) throw new AgentError('CONFIG_INVALID', `environment variable ${options.password_env} (MQTT password) is not set`);
    return value;
  }
  return undefined;
}

/** Translates the source's config into mqtt.js options for a subscriber whose session outlives the agent. */
export function subscriberClientOptions(options: MqttSourceOptions, baseDir: string, clientId: string): IClientOptions {
  const persistent = options.session === 'persistent';
  const result: IClientOptions = {
    clientId,
    protocolVersion: options.protocol_version,
    clean: !persistent,
    keepalive: Math.max(1, Math.round(options.keepalive / 1000)),
    connectTimeout: options.connect_timeout,
    reconnectPeriod: options.reconnect_delay,
    // Subscriptions are (re)made by the source at every connect, so a changed topic list takes effect.
    resubscribe: false,
    username: options.username,
    password: password(options, baseDir),
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
  const tls = options.tls;
  if (tls) {
    result.rejectUnauthorized = tls.reject_unauthorized;
    if (tls.ca) result.ca = readFile(baseDir, tls.ca, 'TLS CA');
    if (tls.cert) result.cert = readFile(baseDir, tls.cert, 'TLS certificate');
    if (tls.key) result.key = readFile(baseDir, tls.key, 'TLS key');
    if (tls.servername) result.servername = tls.servername;
  }
  return result;
}
