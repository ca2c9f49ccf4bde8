/**
 * `defineSourceDriver` / `defineSinkDriver`: a driver declares itself with its own option types, and the
 * registry holds every driver as the same erased type without casts. The one narrowing is here, and it is
 * sound: the runtime only ever calls `create` with a config that the driver's own `options` schema (spread into
 * the config schema by the composition root) has validated.
 */
import type { z } from 'zod';
import type { Consumer, ConsumerEnv, Sink, SinkDriver } from '../contracts/sink.ts';
import type { CommonSourceConfig, Source, SourceDriver } from '../contracts/source.ts';
import type { DriverEnv } from '../contracts/driver.ts';

export function defineSourceDriver<O extends z.ZodObject>(driver: SourceDriver<O>): SourceDriver {
  return {
    type: driver.type,
    summary: driver.summary,
    mode: driver.mode,
    options: driver.options,
    create: (config: CommonSourceConfig, env: DriverEnv): Source => driver.create(config as z.output<O> & CommonSourceConfig, env),
  };
}

export function defineSinkDriver<O extends z.ZodObject>(driver: SinkDriver<O>): SinkDriver {
  const preflight = driver.preflight;
  return {
    type: driver.type,
    summary: driver.summary,
    options: driver.options,
    ...(preflight ? { preflight: (config: unknown) => preflight.call(driver, config as z.output<O>) } : {}),
    create: (config: unknown, env: DriverEnv & { device: string }): Sink => driver.create(config as z.output<O>, env),
    createConsumer: (config: unknown, env: ConsumerEnv): Consumer => driver.createConsumer(config as z.output<O>, env),
  };
}
