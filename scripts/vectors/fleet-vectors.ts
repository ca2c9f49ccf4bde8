/**
 * Writes test/vectors/fleet-v1.json: fixed Ed25519 keys (from seeds), the fleet's signed documents with
 * their payload bytes and PAE, and envelopes a device must refuse with the reason it must give, so that an
 * implementation written elsewhere (an operator tool, a device) can be checked against this one. Ed25519
 * signatures are deterministic (RFC 8032), so every byte here is reproducible.
 *
 *   node scripts/vectors/fleet-vectors.ts     (also written by npm run vectors)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CommandDocument,
  type ConfigDocument,
  type DocumentKind,
  type DocumentOf,
  type Ed25519Pair,
  type Envelope,
  keyIdOf,
  type OperatorCertDocument,
  pae,
  pairFromSeed,
  payloadTypeOf,
  type RefusalReason,
  type RevocationsDocument,
  type RootDocument,
  signEnvelope,
} from '../../agent/trust/index.ts';

export const FLEET_OUT = resolve(dirname(fileURLToPath(import.meta.url)), '../../test/vectors/fleet-v1.json');

/** The time at which every vector below is valid (its documents issued before, expiring after). */
export const VECTOR_NOW = '2026-06-01T12:00:00Z';

const seedOf = (first: number) => Uint8Array.from({ length: 32 }, (_, i) => (first + i) & 0xff);

function describeKey(name: string, seed: Uint8Array, pair: Ed25519Pair) {
  return {
    name,
    seed: Buffer.from(seed).toString('hex'),
    public: pair.public,
    publicHex: Buffer.from(pair.public, 'base64url').toString('hex'),
    keyId: keyIdOf(pair.public),
  };
}

function vector<K extends DocumentKind>(name: string, kind: K, document: DocumentOf[K], signers: Ed25519Pair[], certificate?: Envelope) {
  const envelope = signEnvelope(kind, document, signers, certificate);
  const payload = Buffer.from(envelope.payload, 'base64');
  return {
    name,
    kind,
    payloadType: payloadTypeOf(kind),
    payloadText: payload.toString('utf8'),
    pae: pae(envelope.payloadType, payload).toString('hex'),
    envelope,
  };
}

export function makeFleetVectors() {
  const seeds = { root1: seedOf(0x20), root2: seedOf(0x40), root3: seedOf(0x60), operator: seedOf(0xa0), stranger: seedOf(0xc0) };
  const keys = Object.fromEntries(Object.entries(seeds).map(([name, seed]) => [name, pairFromSeed(seed)])) as Record<keyof typeof seeds, Ed25519Pair>;
  const anchor = { root_keys: [keys.root1.public, keys.root2.public], threshold: 2 };

  const certDoc: OperatorCertDocument = {
    kind: 'operator-cert',
    name: 'alice',
    key: keys.operator.public,
    issued: '2026-05-01T00:00:00Z',
    expires: '2026-08-01T00:00:00Z',
    root_version: 1,
  };
  const cert = vector('operator-cert', 'operator-cert', certDoc, [keys.root1, keys.root2]);
  const configDoc: ConfigDocument = {
    kind: 'config',
    target: { group: 'site-berlin' },
    version: 3,
    issued: '2026-06-01T11:00:00Z',
    expires: '2026-06-08T11:00:00Z',
    config: { log: { level: 'debug' }, sources: [{ name: 'load', type: 'synthetic', interval: '5s' }] },
  };
  const config = vector('config', 'config', configDoc, [keys.operator], cert.envelope);
  const commandDoc: CommandDocument = {
    kind: 'command',
    target: { device: 'gw-0001' },
    action: 'log.level',
    args: { level: 'debug' },
    nonce: '00112233445566778899aabbccddeeff',
    issued: '2026-06-01T11:58:00Z',
    expires: '2026-06-01T12:03:00Z',
  };
  const command = vector('command', 'command', commandDoc, [keys.operator], cert.envelope);
  const rootDoc: RootDocument = {
    kind: 'root',
    version: 2,
    threshold: 2,
    keys: [keys.root2.public, keys.root3.public],
    issued: '2026-05-15T00:00:00Z',
    expires: '2027-05-15T00:00:00Z',
  };
  const root2 = vector('root-v2', 'root', rootDoc, [keys.root1, keys.root2, keys.root3]);
  const revocationsDoc: RevocationsDocument = {
    kind: 'revocations',
    version: 1,
    keys: [keyIdOf(keys.stranger.public)],
    issued: '2026-05-20T00:00:00Z',
    expires: '2027-05-20T00:00:00Z',
  };
  const revocations = vector('revocations', 'revocations', revocationsDoc, [keys.root1, keys.root2]);

  const tamperedConfig = { ...config.envelope, payload: Buffer.from(config.payloadText.replace('"debug"', '"trace"')).toString('base64') };
  const { certificate: _attached, ...withoutCert } = config.envelope;
  const oneRootCert = signEnvelope('operator-cert', certDoc, [keys.root1]);
  const refusals: { name: string; expect: 'config' | 'command'; now: string; reason: RefusalReason; envelope: unknown }[] = [
    { name: 'payload-tampered', expect: 'config', now: VECTOR_NOW, reason: 'bad_signature', envelope: tamperedConfig },
    {
      name: 'payload-type-changed',
      expect: 'command',
      now: VECTOR_NOW,
      reason: 'bad_signature',
      envelope: { ...config.envelope, payloadType: payloadTypeOf('command') },
    },
    { name: 'command-where-config-expected', expect: 'config', now: VECTOR_NOW, reason: 'unsupported', envelope: command.envelope },
    {
      name: 'unknown-payload-type',
      expect: 'config',
      now: VECTOR_NOW,
      reason: 'unsupported',
      envelope: { ...config.envelope, payloadType: 'application/json' },
    },
    { name: 'no-certificate', expect: 'config', now: VECTOR_NOW, reason: 'unknown_key', envelope: withoutCert },
    {
      name: 'signed-by-another-key',
      expect: 'config',
      now: VECTOR_NOW,
      reason: 'unknown_key',
      envelope: signEnvelope('config', configDoc, [keys.stranger], cert.envelope),
    },
    {
      name: 'certificate-by-one-root-key',
      expect: 'config',
      now: VECTOR_NOW,
      reason: 'threshold_not_met',
      envelope: signEnvelope('config', configDoc, [keys.operator], oneRootCert),
    },
    { name: 'certificate-expired', expect: 'config', now: '2026-08-01T00:00:00Z', reason: 'expired_key', envelope: config.envelope },
    { name: 'command-expired', expect: 'command', now: '2026-06-01T12:03:00Z', reason: 'expired', envelope: command.envelope },
    { name: 'command-issued-in-the-future', expect: 'command', now: '2026-06-01T11:52:59Z', reason: 'not_yet_valid', envelope: command.envelope },
    { name: 'payload-not-base64', expect: 'config', now: VECTOR_NOW, reason: 'malformed', envelope: { ...config.envelope, payload: '!!' } },
  ];

  return {
    format: 'edge-agent fleet trust',
    version: 1,
    spec: 'docs/remote.md#trust',
    generatedBy: 'npm run vectors (scripts/vectors/fleet-vectors.ts)',
    notes: [
      'Ed25519 as in RFC 8032. "seed" is the 32-byte private key (hex); "public" is the raw 32-byte public key in base64url without padding, "publicHex" the same bytes in hex.',
      'keyId = the first 16 hex characters of SHA-256 of the raw 32-byte public key.',
      'Envelopes are DSSE: payload is standard base64 of the document\'s UTF-8 JSON bytes ("payloadText"); each signature is standard base64 of the Ed25519 signature over PAE.',
      'PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN the decimal byte length; "pae" is its bytes in hex. Verify over the payload bytes as sent; never re-serialise the JSON.',
      `The device trusts "anchor" (fleet.trust.root_keys and threshold: root version 1). Every vector is valid at "now" (${VECTOR_NOW}); each refusal gives the time to check it at and the reason a device must refuse it with.`,
      'A config or command carries the operator certificate in "certificate": a DSSE envelope of kind operator-cert that at least the root threshold of root keys signed.',
      'root-v2 is signed by both keys of version 1 (its threshold, 2) and by both of its own keys (its threshold, 2): a device at version 1 accepts it.',
    ],
    now: VECTOR_NOW,
    keys: Object.entries(keys).map(([name, pair]) => describeKey(name, seeds[name as keyof typeof seeds], pair)),
    anchor,
    vectors: [cert, config, command, root2, revocations],
    refusals,
  };
}

if (import.meta.main) {
  mkdirSync(dirname(FLEET_OUT), { recursive: true });
  writeFileSync(FLEET_OUT, `${JSON.stringify(makeFleetVectors(), null, 2)}\n`);
  console.log(`wrote ${FLEET_OUT}`);
}
