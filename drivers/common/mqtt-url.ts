import type { UrlOptionSpec } from '../../agent/sdk/index.ts';

/**
 * The URLs an MQTT client here connects to (sink, consumer and source alike): the schemes mqtt.js speaks in
 * Node (tcp and mqtt plain; ssl, tls and mqtts over TLS; ws and wss over WebSocket), or `embedded` for the
 * agent's in-process broker.
 */
export const MQTT_URL: UrlOptionSpec = { schemes: ['mqtt', 'mqtts', 'tcp', 'ssl', 'tls', 'ws', 'wss'], words: ['embedded'] };
