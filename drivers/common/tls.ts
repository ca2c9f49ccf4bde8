/** The drivers' `tls:` block and TLS connection options: declared in the core (agent/util/tls.ts), shared with the fleet control connection. */
export { describeTlsFailure, type TlsOptions, type TlsVariant, tlsConnectionOptions, tlsOptions } from '../../agent/sdk/index.ts';
