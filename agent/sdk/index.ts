/**
 * The SDK: everything a driver may import from the core, and nothing else. It only re-exports; the types and
 * helpers live in their own layers (domain, contracts, telemetry, util), which the core imports directly.
 * Drivers never reach past this file, so the core can change behind it.
 */
export { z } from '../util/zod.ts';
export type { IncomingMessage, OutgoingBatch } from '../domain/batch.ts';
export type { AgentRecord, Cursor, EmittedRecords, RecordRows } from '../domain/record.ts';
export { asRecords, ordinaryColumns, recordCount } from '../domain/record.ts';
export type { DriverEnv, DriverInfo, MeteredSocket, WireMeter } from '../contracts/driver.ts';
export { meterMqttClient } from '../util/wire.ts';
export { mqttConnectOptions } from '../util/mqtt-url.ts';
export { connectMqtt, MqttStore } from '../util/mqtt-client.ts';
export type { CentreAcks, Consumer, ConsumerEnv, Sink, SinkDriver } from '../contracts/sink.ts';
export type { CommonSourceConfig, EmitOptions, PolledSource, ServiceSource, Source, SourceContext, SourceDriver } from '../contracts/source.ts';
export { COMMIT_NOW } from '../contracts/source.ts';
export { defineSinkDriver, defineSourceDriver } from './define.ts';
export type { Counters } from '../telemetry/counters.ts';
export type { ProblemLevel, ProblemOptions, ProblemReporter } from '../telemetry/problems.ts';
export { AgentError, describeError, isAgentError } from '../errors.ts';
export type { ErrorCode } from '../errors.ts';
export type { Logger } from '../log.ts';
export { duration, size } from '../util/units.ts';
export { backoffDelay, delay } from '../util/backoff.ts';
export type { BackoffPolicy } from '../util/backoff.ts';
/**
 * Opens a SQLite file with better-sqlite3 the way this runtime loads its native addon (inside the single
 * executable it is unpacked from the executable): drivers use this, never `new Database()` themselves.
 */
export { openDatabase as openSqlite } from '../util/sqlite.ts';
export { redactUrl, urlOption, type UrlOptionSpec } from '../util/url.ts';
export { fileOption, type FileOptionMeta } from '../util/file-option.ts';
export { envOption, type EnvOptionMeta } from '../util/env-option.ts';
export { describeTlsFailure, type TlsConnectionOptions, type TlsOptions, type TlsVariant, tlsConnectionOptions, tlsOptions } from '../util/tls.ts';
