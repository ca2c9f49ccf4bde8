/**
 * What remote control needs from the parts built beside it (the trust chain, the desired-config pipeline), as
 * narrow structural types: the status, command and desired-config code depend on these, and remote-control.ts
 * hands in the real objects (pipeline-adapter.ts fits the pipeline to this shape).
 */
import type { RefusalReason } from '../trust/index.ts';

export type { RefusalReason };

/** A refusal from anywhere (the trust chain's `Refusal`, the pipeline's): anything with a string `reason`. */
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
  version?: number | string;
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
  /** `changed: false`: the device had exactly this already (a retained message seen again). */
  acceptRoot(envelope: unknown, now: Date): { changed: boolean };
  acceptRevocations(envelope: unknown, now: Date): { changed: boolean };
  verify(envelope: unknown, expectKind: 'config' | 'command' | 'update-manifest' | 'update-timestamp', now: Date): Verified;
  /** A threshold of root keys signed this envelope too (a rollback manifest); throws a refusal otherwise. */
  verifyRootThreshold?(envelope: unknown, what: string): void;
}

/**
 * A part of remote control built outside this room (the self-update delivery, agent/update/): it names its
 * topics, takes their messages, and adds to the status. remote-control.ts hands it the connection.
 */
export interface RemoteExtension {
  subscriptions(): string[];
  handles(topic: string): boolean;
  handle(message: import('./channel.ts').InboundMessage): void;
  oversize?(message: { topic: string; bytes: number }): void;
  /** Every (re)connect. */
  connected(): void;
  /** Merged into the retained status under its own key. */
  status?(): Record<string, unknown>;
  stop(): Promise<void> | void;
}

export interface RemoteExtensionContext {
  device: string;
  groups: readonly string[];
  prefix: string;
  protocolVersion: 4 | 5;
  verifier: Verifier;
  publish(
    topic: string,
    payload: string | Buffer,
    options?: { retain?: boolean; responseTopic?: string | undefined; correlationData?: Buffer | undefined },
  ): Promise<void>;
  isConnected(): boolean;
  /** Counts a refusal (edge_remote_refused_total{kind, reason}) and makes it the status's last error. */
  refused(kind: string, reason: RefusalReason): void;
  /** Publishes the status again now (a state an operator acts on changed). */
  statusChanged(): void;
}

export type RemoteExtensionFactory = (context: RemoteExtensionContext) => RemoteExtension;

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
  /** `redelivered`: the broker's retained copy, handed over again at subscribe. */
  offer(layer: string, document: SignedDocument, signer: Verified['signer'], envelope: unknown, options?: { redelivered?: boolean }): Promise<ApplyReport>;
  /** config.rollback: the remote layers before the last remote commit, applied and health-gated; undefined when the pipeline cannot. */
  rollback?(): Promise<ApplyReport>;
  /** The effective config (for config.get) and its version and provenance (for status). */
  effective(): { config: unknown; version: string; layers: { source: string; version?: number; sha?: string }[] };
  lastReport(): ApplyReport | undefined;
}
