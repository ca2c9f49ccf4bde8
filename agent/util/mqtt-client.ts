/**
 * MQTT.js, as the agent loads it: every module that connects a client or extends its store takes them from
 * here, so that the fix of mqtt-packet's length cache (mqtt-packet-lengths.ts) is in place before MQTT.js's
 * code is evaluated. Types may still be imported from 'mqtt' (`import type` loads nothing).
 */
import './mqtt-packet-lengths.ts';
import mqtt from 'mqtt';

export const connectMqtt = mqtt.connect;
export const connectMqttAsync = mqtt.connectAsync;
export const MqttStore = mqtt.Store;
