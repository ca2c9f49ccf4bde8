import { AgentError, describeTlsFailure } from '../../../agent/sdk/index.ts';

/** Broker answers that say this batch itself can never be stored: set aside (counted), never retried. */
const BATCH_FAULTS = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD']);

/**
 * Broker answers that refuse every batch alike until an operator changes the cluster or this config: the
 * data waits in the queue (retryable), and the reason is reported once as a configuration problem.
 */
const CONFIGURATION_FAULTS = new Map([
  ['TOPIC_AUTHORIZATION_FAILED', 'not authorized to write the topic: check the ACLs for this principal'],
  ['CLUSTER_AUTHORIZATION_FAILED', 'not authorized on the cluster (the idempotent producer needs IdempotentWrite)'],
  ['SASL_AUTHENTICATION_FAILED', 'SASL authentication failed: check sasl.username and the password'],
  ['UNSUPPORTED_SASL_MECHANISM', 'the broker does not offer this sasl.mechanism'],
  ['ILLEGAL_SASL_STATE', 'the broker expects SASL on this listener: set `sasl`'],
  ['INVALID_TOPIC_EXCEPTION', 'the topic name is refused by the broker'],
  ['PLT_KFK_AUTHENTICATION', 'authentication failed: check `sasl` and `tls`'],
]);

/** Every error inside an AggregateError / cause chain, depth first (the client nests them per attempt). */
function* leaves(err: unknown, depth = 0): Generator<unknown> {
  if (depth > 6 || err === null || err === undefined) return;
  yield err;
  const nested = (err as { errors?: unknown }).errors;
  if (Array.isArray(nested)) for (const e of nested) yield* leaves(e, depth + 1);
  const cause = (err as { cause?: unknown }).cause;
  if (cause !== undefined) yield* leaves(cause, depth + 1);
}

/** The Kafka protocol error name (MESSAGE_TOO_LARGE…) or client code found deepest first, if any. */
function kafkaCodes(err: unknown): string[] {
  const codes: string[] = [];
  for (const e of leaves(err)) {
    const id = (e as { apiId?: unknown; id?: unknown }).apiId ?? (e as { id?: unknown }).id;
    if (typeof id === 'string') codes.push(id);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
  }
  return codes;
}

export interface MappedFailure {
  error: AgentError;
  /** Set when the cause is the cluster's or this config's: worth one problem report, keyed by it. */
  configuration?: string;
}

/** Maps a failed produce to the sink contract: retryable unless the broker refused the batch itself. */
export function mapProduceError(err: unknown, what: string): MappedFailure {
  const codes = kafkaCodes(err);
  const fault = codes.find((c) => BATCH_FAULTS.has(c));
  if (fault) {
    return { error: new AgentError('SINK_REJECTED', `broker refused ${what}: ${fault}`, { cause: err, retryable: false }) };
  }
  if (codes.includes('PLT_KFK_USER')) {
    return { error: new AgentError('SINK_REJECTED', `${what} cannot be sent: ${firstMessage(err)}`, { cause: err, retryable: false }) };
  }
  const configuration = configurationFault(codes);
  if (configuration) {
    const reason = CONFIGURATION_FAULTS.get(configuration)!;
    return { error: new AgentError('SINK_REJECTED', `${what} not stored: ${reason}`, { cause: err, retryable: true }), configuration: reason };
  }
  const tls = describeTlsFailure(findTls(err));
  if (tls) return { error: new AgentError('SINK_UNAVAILABLE', `${what} not sent: ${tls}`, { cause: err, retryable: true }), configuration: tls };
  // PLT_KFK_TIMEOUT is the client's code for a request that timed out (not one of ours).
  const timedOut = codes.includes('PLT_KFK_TIMEOUT');
  const code = timedOut ? 'SINK_TIMEOUT' : 'SINK_UNAVAILABLE';
  return { error: new AgentError(code, `${what} not sent: ${firstMessage(err)}`, { cause: err, retryable: true }) };
}

/**
 * The most specific configuration fault: the last one found, as each chain is walked from the outer error to
 * its cause. A wrong SCRAM/PLAIN password nests the broker's SASL_AUTHENTICATION_FAILED ("check the password")
 * under the client's PLT_KFK_AUTHENTICATION ("check `sasl` and `tls`"); the first found named the vaguer one.
 */
function configurationFault(codes: string[]): string | undefined {
  return codes.findLast((c) => CONFIGURATION_FAULTS.has(c));
}

/**
 * Why the sink could not connect (a failed metadata probe), for its log and for the writes it refuses
 * meanwhile. The client reports only "metadata failed 3 times." at the top: the reason (a refused password,
 * a certificate the CA did not sign) is deep in the chain, and without it the operator sees a broker that
 * looks merely unreachable. Always SINK_UNAVAILABLE, whatever the reason: the code of a write refused for
 * want of a connection (SINK_REJECTED says the broker refused this batch, and callers act on that).
 */
export function mapConnectError(err: unknown): MappedFailure {
  const fault = configurationFault(kafkaCodes(err));
  const configuration = fault ? CONFIGURATION_FAULTS.get(fault) : describeTlsFailure(findTls(err));
  const reason = configuration ?? firstMessage(err);
  return {
    error: new AgentError('SINK_UNAVAILABLE', `Kafka not connected: ${reason}`, { cause: err, retryable: true }),
    ...(configuration ? { configuration } : {}),
  };
}

function findTls(err: unknown): unknown {
  for (const e of leaves(err)) if (describeTlsFailure(e)) return e;
  return undefined;
}

/** The most specific message in the chain (the outer ones say only "Producing messages failed."). */
export function firstMessage(err: unknown): string {
  let last = '';
  for (const e of leaves(err)) {
    const nested = (e as { errors?: unknown }).errors;
    if (e instanceof Error && !(Array.isArray(nested) && nested.length > 0)) return e.message.slice(0, 300);
    if (e instanceof Error) last = e.message;
  }
  return last.slice(0, 300) || String(err).slice(0, 300);
}
