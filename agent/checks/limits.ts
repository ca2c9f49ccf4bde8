/**
 * A gateway's batch settings held against what a centre accepts (docs/wire-format.md, "Limits"). A batch the
 * receiver refuses is not lost (it sets it aside in its dead-letter store) but it does not reach the output
 * until an operator raises the limit and replays it, while the gateway has counted it sent and deleted it.
 * Against the receiver section of the same file (a demo, receiver.enabled): errors. Against a centre's
 * defaults, which the gateway cannot see: warnings.
 */
import type { LoadedConfig } from '../config/load.ts';
import { DEFAULT_RECEIVER_LIMITS, ENVELOPE_OVERHEAD_BYTES } from '../envelope/limits.ts';
import { type ConfigProblem, error, warning } from './problems.ts';

export function limitProblems(loaded: LoadedConfig): ConfigProblem[] {
  const { config } = loaded;
  // Only a config that sends batches has batch settings that matter.
  if (!config.sink || !config.device) return [];
  const receiver = config.receiver;
  const own = receiver?.enabled === true;
  const centre = receiver?.enabled
    ? { maxBatchBytes: receiver.max_batch_bytes, maxEnvelopeBytes: receiver.max_envelope_bytes, maxRecords: receiver.max_records }
    : DEFAULT_RECEIVER_LIMITS;
  const where = own ? 'this file’s receiver' : 'a centre with default limits';
  const problem = own ? error : warning;
  const problems: ConfigProblem[] = [];
  const { max_bytes: maxBytes, max_records: maxRecords } = config.batch;
  if (maxBytes > centre.maxBatchBytes)
    problems.push(
      problem(
        ['batch', 'max_bytes'],
        `batches of up to ${maxBytes} bytes of CBOR exceed receiver.max_batch_bytes of ${where} (${centre.maxBatchBytes}): they would be set aside there, not written`,
      ),
    );
  if (maxBytes + ENVELOPE_OVERHEAD_BYTES > centre.maxEnvelopeBytes)
    problems.push(
      problem(
        ['batch', 'max_bytes'],
        `a batch of ${maxBytes} bytes that does not compress seals to more than receiver.max_envelope_bytes of ${where} (${centre.maxEnvelopeBytes}, with ${ENVELOPE_OVERHEAD_BYTES} bytes of overhead): it would be refused there`,
      ),
    );
  if (maxRecords > centre.maxRecords)
    problems.push(problem(['batch', 'max_records'], `batches of up to ${maxRecords} records exceed receiver.max_records of ${where} (${centre.maxRecords})`));
  return problems;
}
