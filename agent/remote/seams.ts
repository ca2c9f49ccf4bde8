/**
 * What remote control needs from the parts built beside it (the trust chain, the desired-config pipeline, the
 * running agent), as narrow structural types: the channel, status and command code depend on these, and
 * remote-control.ts hands in the real objects. Tests hand in small fakes where the real thing is not the point.
 */
import type { Logger } from '../log.ts';

/** A refusal's stable reason (docs/remote.md, "Refusal reasons"). */
export type RefusalReason =
  | 'malformed'
  | 'unsupported'
  | 'bad_signature'
  | 'unknown_key'
  | 'revoked_key'
  | 'expired_key'
  | 'threshold_not_met'
  | 'replayed'
  | 'older_version'
  | 'wrong_target'
  | 'expired'
  | 'not_yet_valid'
  | 'schema_invalid'
  | 'forbidden_setting';

/** A thrown refusal: anything with a string `reason` (the trust chain's `Refusal`, or ours). */
export class RemoteRefusal extends Error {
  readonly reason: RefusalReason;
  constructor(reason: RefusalReason, message: string) {
    super(message);
    this.name = 'RemoteRefusal';
    this.reason = reason;
  }
}

export function refusalOf(err: unknown): { reason: RefusalReason; message: string } | undefined {
  if (typeof err === 'object' && err !== null && typeof (err as { reason?: unknown }).reason === 'string') {
    return { reason: (err as { reason: RefusalReason }).reason, message: err instanceof Error ? err.message : String(err) };
  }
  return undefined;
}

export interface SignedDocument {
  kind: string;
  issued?: string;
  expires?: string;
  target?: { device?: string; group?: string };
  version?: number;
  action?: string;
  args?: Record<string, unknown>;
  nonce?: string;
  config?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Verified {
  document: SignedDocument;
  signer: { keyId: string; name: string };
}

/** The trust chain (agent/trust/): throws a refusal, returns the verified document. */
export interface Verifier {
  acceptRoot(envelope: unknown, now: Date): void;
  acceptRevocations(envelope: unknown, now: Date): void;
  verify(envelope: unknown, expectKind: 'config' | 'command', now: Date): Verified;
}

/** The outcome of one desired-config layer (retained on `<p>/<device>/config/report`). */
export interface ApplyReport {
  layer: string;
  version?: number | undefined;
  outcome: 'committed' | 'rolled_back' | 'refused' | 'unchanged';
  reason?: string | undefined;
  message?: string | undefined;
  at: string;
  effective?: string | undefined;
}

/** The desired-config pipeline (agent/remote/config-*.ts). */
export interface DesiredConfigPipeline {
  offer(layer: string, document: SignedDocument, signer: Verified['signer'], envelope: unknown): Promise<ApplyReport>;
  /** Apply the committed config again (config.rollback); undefined when the pipeline cannot. */
  rollback?(): Promise<ApplyReport>;
  /** The effective config (for config.get) and its version and provenance (for status). */
  effective(): { config: unknown; version: string; layers: { source: string; version?: number; sha?: string }[] };
  lastReport(): ApplyReport | undefined;
}

/** The running agent as remote control sees it. */
export interface ControlledAgent {
  status(): {
    queue: { records: number; bytes: number };
    sources: Record<string, { state: string }>;
    sink?: { connected: boolean };
  };
  flush(): Promise<void>;
  /** Oldest queued record's age in seconds, or 0 with nothing queued. */
  oldestAgeSeconds(): number;
  pauseSource(name: string): Promise<boolean>;
  resumeSource(name: string): Promise<boolean>;
  setLogLevel(level: string): void;
  /** Ends this run and starts the agent again in the same process (the run command owns that). */
  restart(): void;
}

export interface RemoteDeps {
  log: Logger;
}
