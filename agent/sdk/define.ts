/**
 * `defineSourceDriver` / `defineSinkDriver`: a driver declares itself with its own option types, and the
 * registry holds every driver as the same erased type without casts. The one narrowing is here, and it is
 * sound: the runtime only ever calls `create` with a config that the driver's own `options` schema (spread into
 * the config schema by the composition root) has validated.
 *
 * A driver may give its options as a function that builds the schema: it is then built on the first read of
 * `options` and kept. Building a zod schema costs time at start (every driver's together were a large part of
 * the executable's start-up), and a config names only a few of the drivers, so the others never pay it.
 */
import type { z } from 'zod';
import type { Consumer, ConsumerEnv, Sink, SinkDriver } from '../contracts/sink.ts';
import type { CommonSourceConfig, Source, SourceDriver } from '../contracts/source.ts';
import type { DriverEnv } from '../contracts/driver.ts';

/** A driver's declaration as written: its options schema, or a function building it on first use. */
type Declared<D extends { options: z.ZodObject }> = Omit<D, 'options'> & { readonly options: D['options'] | (() => D['options']) };

function once<O extends z.ZodObject>(options: O | (() => O)): () => O {
  if (typeof options !== 'function') return () => options;
  let built: O | undefined;
  return () => {
    built ??= options();
    return built;
  };
}

export function defineSourceDriver<O extends z.ZodObject>(driver: Declared<SourceDriver<O>>): SourceDriver {
  const options = once(driver.options);
  return {
    type: driver.type,
    summary: driver.summary,
    mode: driver.mode,
    get options() {
      return options();
    },
    create: (config: CommonSourceConfig, env: DriverEnv): Source => driver.create(config as z.output<O> & CommonSourceConfig, env),
  };
}

export function defineSinkDriver<O extends z.ZodObject>(driver: Declared<SinkDriver<O>>): SinkDriver {
  const preflight = driver.preflight;
  const options = once(driver.options);
  return {
    type: driver.type,
    summary: driver.summary,
    get options() {
      return options();
    },
    ...(preflight ? { preflight: (config: unknown) => preflight.call(driver as SinkDriver<O>, config as z.output<O>) } : {}),
    create: (config: unknown, env: DriverEnv & { device: string }): Sink => driver.create(config as z.output<O>, env),
    createConsumer: (config: unknown, env: ConsumerEnv): Consumer => driver.createConsumer(config as z.output<O>, env),
  };
}
