import type { IClientOptions } from 'mqtt';

/**
 * MQTT.js's client options for a broker URL, the URL read with the WHATWG parser. Handing MQTT.js the URL
 * string makes it call the legacy `url.parse()`, which prints Node's DEP0169 deprecation warning into every
 * start's log. The result is what MQTT.js builds from a URL string and its options, precedence included:
 * host, port, protocol and path come from the URL unless the options give them; credentials in the URL and a
 * `clientId` query parameter win over the options' (test/util/mqtt-url.test.ts compares with MQTT.js).
 */
export function mqttConnectOptions(url: string, options: IClientOptions = {}): IClientOptions {
  const parsed = new URL(url);
  const fromUrl: IClientOptions = {
    protocol: parsed.protocol.replace(/:$/, '') as IClientOptions['protocol'],
    // WHATWG keeps an IPv6 literal's brackets; a socket's host is the bare address.
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    // MQTT.js uses the path for WebSocket URLs only (it drops it otherwise), the query part of it.
    path: `${parsed.pathname}${parsed.search}`,
  };
  if (parsed.port !== '') fromUrl.port = Number(parsed.port);
  // MQTT.js's packet writer otherwise fills a cache of 65,536 two-byte Buffers at the first packet: ≈5 MB of
  // heap held for the life of the process and ≈14 ms of every start, to save one small allocation per
  // packet id or length written. A gateway writes a few packets a second.
  const merged: IClientOptions = { writeCache: false, ...fromUrl, ...options };
  if (parsed.username !== '') {
    merged.username = decodeURIComponent(parsed.username);
    if (parsed.password !== '') merged.password = decodeURIComponent(parsed.password);
  }
  const clientId = parsed.searchParams.get('clientId');
  if (clientId !== null) merged.clientId = clientId;
  return merged;
}
