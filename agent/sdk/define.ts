/**
 * `defineSourceDriver` / `defineSinkDriver`: a driver declares itself with its own option types, and the
 * registry holds every driver as the same erased type without casts. The one narrowing is here, and it is
 * sound: the runtime only ever calls `create` with a config that the driver's own `options` schema (spread into
 * the config schema by the composition root) has validated.
 *
 * A driver may give its options as a function that builds the schema: it is then built on the first read of
 * `options` and kept. Building a zod schema costs time at start (every driver's together were a large part of
 * the executable's start-up), and a config names only a few of the drivers, so the others never pay it.
 *
 * Likewise `create` may return its instance or a promise of it, and the defined driver's `create` always
 * returns a promise: a driver's index.ts is only its declaration, and its `create` loads the implementation
 * (the class and the libraries it needs) with `import()`, so that a start evaluates the implementations of
 * the drivers its config names only (every driver's declaration is evaluated: the registry lists them all).
 */
import type { z } from '../util/zod.ts';
import type { Consumer, ConsumerEnv, Sink, SinkDriver } from '../contracts/sink.ts';
import type { CommonSourceConfig, Source, SourceDriver } from '../contracts/source.ts';
import type { DriverEnv } from '../contracts/driver.ts';

/** What a declaration's `create` may return: the instance, or a promise of it (its module loaded on demand). */
type Made<T> = T | Promise<T>;

/** A driver's declaration as written: its options schema, or a function building it on first use. */
type Declared<D extends { options: z.ZodObject }> = Omit<D, 'options'> & { readonly options: D['options'] | (() => D['options']) };

type DeclaredSource<O extends z.ZodObject> = Omit<Declared<SourceDriver<O>>, 'create'> & {
  create(config: z.output<O> & CommonSourceConfig, env: DriverEnv): Made<Source>;
};

type DeclaredSink<O extends z.ZodObject> = Omit<Declared<SinkDriver<O>>, 'create' | 'createConsumer'> & {
  create(config: z.output<O>, env: DriverEnv & { device: string }): Made<Sink>;
  createConsumer(config: z.output<O>, env: ConsumerEnv): Made<Consumer>;
};

function once<O extends z.ZodObject>(options: O | (() => O)): () => O {
  if (typeof options !== 'function') return () => options;
  let built: O | undefined;
  return () => {
    built ??= options();
    return built;
  };
}

export function defineSourceDriver<O extends z.ZodObject>(driver: DeclaredSource<O>): SourceDriver {
  const options = once(driver.options);
  return {
    type: driver.type,
    summary: driver.summary,
    mode: driver.mode,
    get options() {
      return options();
    },
    // async: a declaration's synchronous throw (a start error) reaches the runtime as a rejection, like a failed import.
    create: async (config: CommonSourceConfig, env: DriverEnv): Promise<Source> => driver.create(config as z.output<O> & CommonSourceConfig, env),
  };
}

export function defineSinkDriver<O extends z.ZodObject>(driver: DeclaredSink<O>): SinkDriver {
  const preflight = driver.preflight;
  const options = once(driver.options);
  return {
    type: driver.type,
    summary: driver.summary,
    get options() {
      return options();
    },
    ...(preflight ? { preflight: (config: unknown) => preflight.call(driver, config as z.output<O>) } : {}),
    create: async (config: unknown, env: DriverEnv & { device: string }): Promise<Sink> => driver.create(config as z.output<O>, env),
    createConsumer: async (config: unknown, env: ConsumerEnv): Promise<Consumer> => driver.createConsumer(config as z.output<O>, env),
  };
}
