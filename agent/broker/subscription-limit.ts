import type { AedesOptions, Client } from 'aedes';

/**
 * A bound on the topic filters one client holds on the embedded broker. aedes keeps every filter a client
 * subscribes to (a persistent session's for ever, until it comes back clean) and matches every message against
 * them: a client subscribing to ever new filters grows the broker without end. Past the bound a new filter is
 * refused in the SUBACK (0x80, MQTT 3.1.1 3.9.3); the connection and the filters it holds stay.
 *
 * aedes authorizes every filter of one SUBSCRIBE before it stores any of them, so the filters granted within
 * the packet being handled are counted too (until the next turn of the event loop, when they are stored).
 */
export function limitSubscriptions(max: number, onRefused: (clientId: string, topic: string) => void): NonNullable<AedesOptions['authorizeSubscribe']> {
  const granting = new WeakMap<Client, Set<string>>();
  return (client, sub, callback) => {
    const held = (client as unknown as { subscriptions: Record<string, unknown> }).subscriptions;
    if (Object.hasOwn(held, sub.topic)) return callback(null, sub);
    let granted = granting.get(client);
    if (!granted) {
      const fresh = new Set<string>();
      granting.set(client, fresh);
      setImmediate(() => granting.delete(client));
      granted = fresh;
    }
    if (Object.keys(held).length + granted.size >= max) {
      onRefused(client.id, sub.topic);
      // A null subscription is aedes' refusal of that one filter (SUBACK 0x80), not an error of the connection.
      return callback(null, null as unknown as typeof sub);
    }
    granted.add(sub.topic);
    callback(null, sub);
  };
}
