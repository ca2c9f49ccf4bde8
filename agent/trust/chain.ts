/**
 * The device's trust chain: the root it trusts now (version 1 from its local config, newer ones accepted
 * N → N+1 and persisted), the newest revocation list, and verification of what operators sign.
 * Version floors of configs and the nonces of commands are not kept here (their handlers keep them).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { AgentError } from '../errors.ts';
import {
  checkWindow,
  type CommandDocument,
  type ConfigDocument,
  decodeDocument,
  type OperatorCertDocument,
  type RootDocument,
  type UpdateManifestDocument,
  type UpdateTimestampDocument,
} from './documents.ts';
import { checkEnvelope, DEFAULT_MAX_ENVELOPE_BYTES, type ParsedEnvelope, pae, parseEnvelope, parseMessage } from './dsse.ts';
import { decodeKey, keyIdOf, publicKeyObject, verifyBytes } from './ed25519.ts';
import { Refusal } from './refusal.ts';
import type { TrustStore } from './store.ts';

/** The root keys and threshold of the device's local config (`fleet.trust`): root version 1. */
export interface TrustAnchor {
  keys: readonly string[];
  threshold: number;
}

export interface RootState {
  version: number;
  threshold: number;
  keys: readonly string[];
}

export interface RevocationState {
  version: number;
  keys: ReadonlySet<string>;
}

export interface Signer {
  keyId: string;
  name: string;
}

export interface Verified<D> {
  document: D;
  signer: Signer;
  certificate: OperatorCertDocument;
}

export interface DocumentByVerifiedKind {
  config: ConfigDocument;
  command: CommandDocument;
  'update-manifest': UpdateManifestDocument;
  'update-timestamp': UpdateTimestampDocument;
}

export interface Accepted {
  version: number;
  /** False when what arrived is what the device has already (a retained message seen again). */
  changed: boolean;
}

/** A chain of roots given as an array is at most this long (versions the device has are skipped). */
const MAX_ROOT_CHAIN = 64;
const ROOT_STATE = 'root';
const REVOCATIONS_STATE = 'revocations';

export class TrustChain {
  private readonly anchorId: string;
  private readonly store: TrustStore;
  private readonly maxBytes: number;
  private current: RootState;
  private rootKeys: Map<string, KeyObject>;
  private revoked: RevocationState | undefined;

  constructor(anchor: TrustAnchor, store: TrustStore, options: { maxBytes?: number } = {}) {
    if (anchor.keys.length === 0 || anchor.keys.some((key) => !decodeKey(key)))
      throw new AgentError('CONFIG_INVALID', 'fleet.trust.root_keys must be base64url Ed25519 public keys, at least one');
    if (!Number.isInteger(anchor.threshold) || anchor.threshold < 1 || anchor.threshold > anchor.keys.length)
      throw new AgentError('CONFIG_INVALID', `fleet.trust.threshold must be between 1 and the ${anchor.keys.length} root keys`);
    this.store = store;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
    // What the device accepted belongs to the anchor it accepted it under: a device given new root keys in
    // its local file starts again from them rather than from a root its old keys led to.
    this.anchorId = createHash('sha256')
      .update(JSON.stringify({ keys: [...anchor.keys].sort(), threshold: anchor.threshold }))
      .digest('hex');
    this.current = this.loadRoot() ?? { version: 1, threshold: anchor.threshold, keys: [...anchor.keys] };
    this.rootKeys = keyObjects(this.current.keys);
    this.revoked = this.loadRevocations();
  }

  get root(): RootState {
    return this.current;
  }

  get revocations(): RevocationState | undefined {
    return this.revoked;
  }

  /**
   * A newer root: one envelope, or an array of them (the chain; versions the device has are skipped). Each
   * must be exactly the next version, signed by a threshold of the current root's keys and by its own.
   */
  acceptRoot(input: unknown, now: Date): Accepted {
    const message = parseMessage(input, this.maxBytes);
    if (!Array.isArray(message)) return this.acceptOneRoot(checkEnvelope(message, 'envelope', false), now, true, true);
    if (message.length === 0 || message.length > MAX_ROOT_CHAIN)
      throw new Refusal('malformed', `a chain of roots holds 1 to ${MAX_ROOT_CHAIN} envelopes, not ${message.length}`);
    const chain = message
      .map((value, i) => {
        const envelope = checkEnvelope(value, `envelope[${i}]`, false);
        if (envelope.kind !== 'root') throw new Refusal('unsupported', `envelope[${i}] is a ${envelope.kind} envelope, not a root`);
        return { envelope, version: decodeDocument('root', envelope.payload, `envelope[${i}].payload`).version };
      })
      .filter((entry) => entry.version > this.current.version)
      .sort((a, b) => a.version - b.version);
    if (chain.length === 0) return { version: this.current.version, changed: false };
    // Only the newest root must be within its time window: a device offline for long may step through
    // roots that have expired since to reach it.
    for (const [i, entry] of chain.entries()) {
      if (entry.version <= this.current.version) continue; // the same version twice in the array
      this.acceptOneRoot(entry.envelope, now, i === chain.length - 1, false);
    }
    return { version: this.current.version, changed: true };
  }

  /** A root-signed revocation list with a higher version than the one the device has. */
  acceptRevocations(input: unknown, now: Date): Accepted {
    const envelope = parseEnvelope(input, this.maxBytes);
    if (envelope.kind !== 'revocations') throw new Refusal('unsupported', `expected a revocations envelope, got ${envelope.kind}`);
    this.requireThreshold(envelope, this.rootKeys, this.current.threshold, 'revocation list', `root version ${this.current.version}`);
    const document = decodeDocument('revocations', envelope.payload);
    checkWindow(document, now, `revocation list version ${document.version}`);
    const keys = new Set(document.keys);
    if (this.revoked && document.version <= this.revoked.version) {
      if (document.version === this.revoked.version && sameSet(keys, this.revoked.keys)) return { version: document.version, changed: false };
      throw new Refusal('older_version', `revocation list version ${document.version}; this device has version ${this.revoked.version}`);
    }
    this.store.save(REVOCATIONS_STATE, JSON.stringify({ anchor: this.anchorId, document }));
    this.revoked = { version: document.version, keys };
    return { version: document.version, changed: true };
  }

  /**
   * A config or command: signed by an operator key whose attached certificate a threshold of the current
   * root's keys signed, neither expired nor revoked. Returns the document and who signed it.
   */
  verify<K extends keyof DocumentByVerifiedKind>(input: unknown, kind: K, now: Date): Verified<DocumentByVerifiedKind[K]> {
    const envelope = parseEnvelope(input, this.maxBytes);
    if (envelope.kind !== kind) throw new Refusal('unsupported', `expected a ${kind} envelope, got ${envelope.kind}`);
    const certificate = this.verifyCertificate(envelope, now);
    const keyId = keyIdOf(certificate.key);
    this.requireThreshold(envelope, keyObjects([certificate.key]), 1, kind, `operator ${JSON.stringify(certificate.name)} (key id ${keyId})`);
    const document = decodeDocument(kind, envelope.payload) as DocumentByVerifiedKind[K];
    checkWindow(document, now, kind);
    return { document, signer: { keyId, name: certificate.name }, certificate };
  }

  /**
   * A threshold of the current root's keys signed this envelope too (beside its operator): what a rollback
   * manifest needs to go below the release counter a device installed.
   */
  verifyRootThreshold(input: unknown, what: string): void {
    const envelope = parseEnvelope(input, this.maxBytes);
    this.requireThreshold(envelope, this.rootKeys, this.current.threshold, what, `root version ${this.current.version}`);
  }

  /** The operator certificate attached to `envelope`, checked against the current root and revocations. */
  private verifyCertificate(envelope: ParsedEnvelope, now: Date): OperatorCertDocument {
    const attached = envelope.certificate;
    if (!attached) throw new Refusal('unknown_key', 'no operator certificate attached: the signing key cannot be chained to a root');
    if (attached.kind !== 'operator-cert') throw new Refusal('malformed', `envelope.certificate is a ${attached.kind} envelope, not an operator-cert`);
    this.requireThreshold(attached, this.rootKeys, this.current.threshold, 'operator certificate', `root version ${this.current.version}`);
    const certificate = decodeDocument('operator-cert', attached.payload, 'certificate');
    const keyId = keyIdOf(certificate.key);
    const what = `operator ${JSON.stringify(certificate.name)} (key id ${keyId})`;
    if (this.revoked?.keys.has(keyId)) throw new Refusal('revoked_key', `${what} is revoked (revocation list version ${this.revoked.version})`);
    checkWindow(certificate, now, `the certificate of ${what}`, 'expired_key');
    return certificate;
  }

  private acceptOneRoot(envelope: ParsedEnvelope, now: Date, checkTime: boolean, single: boolean): Accepted {
    if (envelope.kind !== 'root') throw new Refusal('unsupported', `expected a root envelope, got ${envelope.kind}`);
    const document = decodeDocument('root', envelope.payload);
    const { version } = this.current;
    if (document.version <= version) {
      if (single && document.version === version && sameRoot(document, this.current)) return { version, changed: false };
      throw new Refusal('older_version', `root version ${document.version}; this device has version ${version}`);
    }
    if (document.version !== version + 1)
      throw new Refusal(
        'unknown_key',
        `root version ${document.version} is signed by keys of version ${document.version - 1}, which this device (at version ${version}) does not have: send every version after ${version}`,
      );
    this.requireThreshold(envelope, this.rootKeys, this.current.threshold, `root version ${document.version}`, `root version ${version}`);
    const ownKeys = keyObjects(document.keys);
    this.requireThreshold(envelope, ownKeys, document.threshold, `root version ${document.version}`, `its own keys`);
    if (checkTime) checkWindow(document, now, `root version ${document.version}`);
    this.store.save(ROOT_STATE, JSON.stringify({ anchor: this.anchorId, document }));
    this.current = { version: document.version, threshold: document.threshold, keys: document.keys };
    this.rootKeys = ownKeys;
    return { version: document.version, changed: true };
  }

  /**
   * At least `threshold` distinct keys of `keys` signed the envelope (a key that signed twice counts once).
   * Short of it, the reason says what is most telling: a known key's signature that does not verify
   * (`bad_signature`: tampering), no signature by a known key at all (`unknown_key`), or too few.
   */
  private requireThreshold(envelope: ParsedEnvelope, keys: Map<string, KeyObject>, threshold: number, what: string, whose: string): void {
    const message = pae(envelope.payloadType, envelope.payload);
    const good = new Set<string>();
    let bad = 0;
    for (const { keyid, sig } of envelope.signatures) {
      const key = keys.get(keyid);
      if (!key || good.has(keyid)) continue;
      if (verifyBytes(key, message, sig)) good.add(keyid);
      else bad++;
    }
    if (good.size >= threshold) return;
    if (bad > 0) throw new Refusal('bad_signature', `${what}: ${bad} signature${bad === 1 ? '' : 's'} by keys of ${whose} do not verify`);
    if (good.size === 0) throw new Refusal('unknown_key', `${what}: no signature by a key of ${whose}`);
    throw new Refusal('threshold_not_met', `${what}: signed by ${good.size} keys of ${whose}, ${threshold} needed`);
  }

  private loadRoot(): RootState | undefined {
    const stored = this.loadState(ROOT_STATE);
    if (!stored) return undefined;
    const document: RootDocument = this.storedDocument('root', stored);
    return { version: document.version, threshold: document.threshold, keys: document.keys };
  }

  private loadRevocations(): RevocationState | undefined {
    const stored = this.loadState(REVOCATIONS_STATE);
    if (!stored) return undefined;
    const document = this.storedDocument('revocations', stored);
    return { version: document.version, keys: new Set(document.keys) };
  }

  private loadState(name: string): { anchor: unknown; document: unknown } | undefined {
    const text = this.store.load(name);
    if (text === undefined) return undefined;
    let value: { anchor: unknown; document: unknown };
    try {
      value = JSON.parse(text);
    } catch (cause) {
      // Fail closed: falling back to the configured root would trust keys a rotation had retired.
      throw new AgentError('TRUST_STORE_FAILED', `the stored ${name} is not JSON`, { cause });
    }
    return value.anchor === this.anchorId ? value : undefined;
  }

  private storedDocument<K extends 'root' | 'revocations'>(kind: K, stored: { document: unknown }) {
    try {
      return decodeDocument(kind, Buffer.from(JSON.stringify(stored.document)), `stored ${kind}`);
    } catch (cause) {
      throw new AgentError('TRUST_STORE_FAILED', `the stored ${kind} is not a valid document`, { cause });
    }
  }
}

function keyObjects(keys: readonly string[]): Map<string, KeyObject> {
  return new Map(keys.map((key) => [keyIdOf(key), publicKeyObject(key)]));
}

function sameRoot(document: RootDocument, current: RootState): boolean {
  return document.threshold === current.threshold && sameSet(new Set(document.keys), new Set(current.keys));
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((value) => b.has(value));
}
