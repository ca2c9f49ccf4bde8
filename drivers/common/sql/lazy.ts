import { AgentError } from '../../../agent/sdk/index.ts';
import type { Failure, SqlDialect } from './poller.ts';

/**
 * A dialect whose module (and database client library, megabytes of heap) loads at the first connect. The
 * source's implementation is itself loaded only when a config names its driver (the driver's `create`); the
 * client library waits one step more, for the first connect.
 */
export function lazyDialect<Fence>(where: string, load: () => Promise<SqlDialect<Fence>>): SqlDialect<Fence> {
  let inner: SqlDialect<Fence> | undefined;
  const loaded = (): SqlDialect<Fence> => {
    if (!inner) throw new AgentError('SOURCE_FAILED', `${where}: used before connecting`);
    return inner;
  };
  return {
    where,
    get connected() {
      return inner?.connected ?? false;
    },
    async connect() {
      inner ??= await load();
      await inner.connect();
    },
    observe: () => loaded().observe(),
    settled: (earlier, now) => loaded().settled(earlier, now),
    read: (after, upTo, limit) => loaded().read(after, upTo, limit),
    sizes: (after, upTo, limit) => loaded().sizes(after, upTo, limit),
    countNullCursor: () => loaded().countNullCursor(),
    disconnect: async () => inner?.disconnect(),
    classify(err: unknown, doing: string): Failure {
      if (inner) return inner.classify(err, doing);
      // The client library itself could not load: nothing a reconnect can change, but keep retrying slowly.
      const error = new AgentError('SOURCE_FAILED', `${where}: cannot load the database client while ${doing}`, { cause: err, retryable: true });
      return { error, counter: 'connection_errors', reconnect: true };
    },
  };
}
