/**
 * The one place the core learns which drivers exist. A static list (not a directory scan) so that the
 * single-binary build sees every driver, and the core imports no driver by name anywhere else.
 */
import type { SinkDriver, SourceDriver } from '../agent/sdk/index.ts';
import { systemSource } from './sources/system/index.ts';
import { syntheticSource } from './sources/synthetic/index.ts';
import { serialSource } from './sources/serial/index.ts';
import { mqttSource } from './sources/mqtt/index.ts';
import { sensorsSource } from './sources/sensors/index.ts';
import { sqliteSource } from './sources/sqlite/index.ts';
import { postgresSource } from './sources/postgres/index.ts';
import { mysqlSource } from './sources/mysql/index.ts';
import { hl7Source } from './sources/hl7/index.ts';
import { modbusSource } from './sources/modbus/index.ts';
import { mqttSink } from './sinks/mqtt/index.ts';
import { pulsarSink } from './sinks/pulsar/index.ts';

export const sourceDrivers: readonly SourceDriver[] = [
  sensorsSource,
  systemSource,
  syntheticSource,
  mqttSource,
  serialSource,
  sqliteSource,
  postgresSource,
  mysqlSource,
  hl7Source,
  modbusSource,
];
export const sinkDrivers: readonly SinkDriver[] = [mqttSink, pulsarSink];
