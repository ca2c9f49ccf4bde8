/**
 * The embedded broker's MQTT packet writer (aedes writes with mqtt-packet's writeToStream), set up before aedes
 * is evaluated:
 * - the remaining lengths it keeps are carved from one block of our own (agent/util/mqtt-packet-lengths.ts),
 *   not views that pin a 64 KiB slab of Node's Buffer pool each;
 * - its cache of 65,536 two-byte Buffers (≈7 MiB of heap, built at the first packet written) is turned off,
 *   as the MQTT clients turn it off with `writeCache: false`.
 * In the source tree aedes shares mqtt-packet with MQTT.js; in the executable the broker's lazy script carries a
 * copy of its own, and scripts/build/bundle.ts evaluates this module first in that script (LAZY_SCRIPT_PRELUDES).
 */
import '../util/mqtt-packet-lengths.ts';
import mqttPacket from 'mqtt-packet';

mqttPacket.writeToStream.cacheNumbers = false;
