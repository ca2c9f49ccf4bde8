import type { BaseOptions, SASLOptions } from '@platformatic/kafka';
import { AgentError, tlsConnectionOptions } from '../../../agent/sdk/index.ts';
import { readPassword } from '../../common/secrets.ts';
import type { KafkaOptions } from './options.ts';

/**
 * The client options shared by producer and consumer. Files (TLS PEMs) are read now, at client creation;
 * the SASL password through a provider, so it is read again at every connection and can rotate.
 */
export function clientOptions(options: KafkaOptions, baseDir: string, clientId: string, what: string): BaseOptions {
  const result: BaseOptions = {
    clientId,
    bootstrapBrokers: options.brokers,
    connectTimeout: options.connect_timeout,
    requestTimeout: options.request_timeout,
    timeout: options.request_timeout,
    retries: options.retries,
    retryDelay: 250,
  };
  if (options.tls) result.tls = tlsConnectionOptions(options.tls, baseDir, what);
  if (options.sasl) {
    const sasl = options.sasl;
    const password = () => {
      const value = readPassword(sasl, baseDir, what, 'CONFIG_INVALID');
      if (value === undefined) throw new AgentError('CONFIG_INVALID', `${what}: sasl needs password_file or password_env`);
      return value;
    };
    password(); // a missing file or variable is a configuration error now, not at the first connection
    result.sasl = { mechanism: sasl.mechanism, username: sasl.username, password } satisfies SASLOptions;
  }
  return result;
}
