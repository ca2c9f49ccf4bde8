/** Keys and signed documents for the trust tests: fresh keys each run, times relative to a fixed `NOW`. */
import { randomBytes } from 'node:crypto';
import {
  type CommandDocument,
  type ConfigDocument,
  type Ed25519Pair,
  type Envelope,
  generatePair,
  MemoryTrustStore,
  type OperatorCertDocument,
  type RevocationsDocument,
  type RootDocument,
  rfc3339,
  signEnvelope,
  TrustChain,
} from '../../agent/trust/index.ts';

export const NOW = new Date('2026-06-01T12:00:00Z');
export const at = (offsetMs: number) => rfc3339(new Date(NOW.getTime() + offsetMs));
export const MINUTE = 60_000;
export const DAY = 86_400_000;

export const pairs = (n: number): Ed25519Pair[] => Array.from({ length: n }, () => generatePair());

export function rootDoc(version: number, keys: Ed25519Pair[], threshold: number, extra: Partial<RootDocument> = {}): RootDocument {
  return { kind: 'root', version, threshold, keys: keys.map((k) => k.public), issued: at(-DAY), expires: at(365 * DAY), ...extra };
}

export function certify(rootSigners: Ed25519Pair[], operator: Ed25519Pair, extra: Partial<OperatorCertDocument> = {}): Envelope {
  const doc: OperatorCertDocument = {
    kind: 'operator-cert',
    name: 'alice',
    key: operator.public,
    issued: at(-DAY),
    expires: at(90 * DAY),
    root_version: 1,
    ...extra,
  };
  return signEnvelope('operator-cert', doc, rootSigners);
}

export function configDoc(extra: Partial<ConfigDocument> = {}): ConfigDocument {
  return { kind: 'config', target: { device: 'gw-01' }, version: 1, issued: at(-MINUTE), expires: at(7 * DAY), config: { log: { level: 'debug' } }, ...extra };
}

export function commandDoc(extra: Partial<CommandDocument> = {}): CommandDocument {
  return {
    kind: 'command',
    target: { device: 'gw-01' },
    action: 'flush',
    args: {},
    nonce: randomBytes(16).toString('hex'),
    issued: at(-MINUTE),
    expires: at(4 * MINUTE),
    ...extra,
  };
}

export function revocationsDoc(version: number, keyIds: string[], extra: Partial<RevocationsDocument> = {}): RevocationsDocument {
  return { kind: 'revocations', version, keys: keyIds, issued: at(-MINUTE), expires: at(365 * DAY), ...extra };
}

/** A device trusting `roots` with `threshold`, an operator certified by the first `threshold` of them. */
export function setup(n = 3, threshold = 2) {
  const roots = pairs(n);
  const operator = generatePair();
  const certificate = certify(roots.slice(0, threshold), operator);
  const store = new MemoryTrustStore();
  const chain = new TrustChain({ keys: roots.map((k) => k.public), threshold }, store);
  const signConfig = (doc: ConfigDocument = configDoc(), key = operator, cert: Envelope | undefined = certificate) => signEnvelope('config', doc, [key], cert);
  return { roots, operator, certificate, store, chain, signConfig };
}

/** An envelope's payload swapped for `document`'s bytes, the signatures left as they were. */
export function withPayload(envelope: Envelope, document: unknown): Envelope {
  return { ...envelope, payload: Buffer.from(JSON.stringify(document)).toString('base64') };
}
