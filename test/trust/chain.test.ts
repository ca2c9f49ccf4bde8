/**
 * TrustChain: every reason it refuses with, each by a test that would pass a wrong envelope if the check
 * were missing, and the root rotation rules (N → N+1 only, signed by the old and the new threshold).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPrivateKey, sign } from 'node:crypto';
import {
  type Ed25519Pair,
  generatePair,
  isRefusal,
  keyIdOf,
  MemoryTrustStore,
  pae,
  type RefusalReason,
  rfc3339,
  signEnvelope,
  TrustChain,
} from '../../agent/trust/index.ts';
import { at, certify, commandDoc, configDoc, DAY, MINUTE, NOW, pairs, revocationsDoc, rootDoc, setup, withPayload } from './fixtures.ts';

function refused(reason: RefusalReason, inMessage?: RegExp) {
  return (err: unknown) => {
    assert.ok(isRefusal(err), `not a Refusal: ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    assert.equal(err.code, 'REMOTE_REFUSED');
    if (inMessage) assert.match(err.message, inMessage);
    return true;
  };
}

describe('TrustChain.verify accepts', () => {
  it('a config signed by a certified operator, returning the document and the signer', () => {
    const { chain, signConfig, operator } = setup();
    const envelope = signConfig();
    for (const input of [envelope, JSON.stringify(envelope), Buffer.from(JSON.stringify(envelope))]) {
      const verified = chain.verify(input, 'config', NOW);
      assert.deepEqual(verified.document.config, { log: { level: 'debug' } });
      assert.deepEqual(verified.signer, { keyId: keyIdOf(operator.public), name: 'alice' });
    }
  });

  it('a command, its args defaulting to {}', () => {
    const { chain, operator, certificate } = setup();
    const { args: _args, ...doc } = commandDoc();
    const verified = chain.verify(signEnvelope('command', doc as never, [operator], certificate), 'command', NOW);
    assert.equal(verified.document.action, 'flush');
    assert.deepEqual(verified.document.args, {});
  });

  it('a document issued up to 5 minutes ahead of the device clock', () => {
    const { chain, signConfig } = setup();
    assert.equal(chain.verify(signConfig(configDoc({ issued: at(4 * MINUTE) })), 'config', NOW).document.version, 1);
  });
});

describe('TrustChain.verify refuses', () => {
  it('malformed: not JSON, not an envelope, bad base64, wrong types, a certificate in a certificate', () => {
    const { chain, signConfig, certificate } = setup();
    const good = signConfig();
    const cases: [unknown, RegExp][] = [
      ['{"payloadType":', /not JSON/],
      [Buffer.from([0xff, 0xfe, 0x00]), /not JSON/],
      ['[1,2]', /not a JSON object/],
      [null, /not a JSON object/],
      [{ ...good, signatures: [] }, /signatures/],
      [{ ...good, payload: 7 }, /payload is not a string/],
      [{ ...good, payload: 'not base64!' }, /not base64/],
      [{ ...good, signatures: [{ keyid: 'x', sig: '%%%' }] }, /not base64/],
      [{ ...good, signatures: [{ keyid: 1, sig: 'AA==' }] }, /keyid and sig/],
      [{ ...good, certificate: { ...certificate, certificate } }, /cannot carry a certificate/],
      [{ ...good, signatures: Array.from({ length: 33 }, () => good.signatures[0]) }, /more than 32/],
    ];
    for (const [input, message] of cases) assert.throws(() => chain.verify(input, 'config', NOW), refused('malformed', message), String(message));
  });

  it('malformed: a payload that is not JSON, or a document of the wrong shape or kind (signed correctly)', () => {
    const { chain, operator, certificate } = setup();
    // Signed correctly over odd bytes, so only the content, not the signature, is wrong.
    const raw = (payload: Buffer) => ({
      ...signEnvelope('config', configDoc(), [operator], certificate),
      payload: payload.toString('base64'),
      signatures: signOver('application/vnd.edge-agent.config+json', payload, operator),
    });
    assert.throws(() => chain.verify(raw(Buffer.from('not json')), 'config', NOW), refused('malformed', /not UTF-8 JSON/));
    const { expires: _e, ...noExpiry } = configDoc();
    assert.throws(() => chain.verify(raw(Buffer.from(JSON.stringify(noExpiry))), 'config', NOW), refused('malformed', /payload\.expires/));
    const commandInConfig = Buffer.from(JSON.stringify(commandDoc()));
    assert.throws(() => chain.verify(raw(commandInConfig), 'config', NOW), refused('malformed', /"command" document in a config envelope/));
    const badTarget = Buffer.from(JSON.stringify(configDoc({ target: { device: 'a', group: 'b' } as never })));
    assert.throws(() => chain.verify(raw(badTarget), 'config', NOW), refused('malformed', /payload\.target/));
  });

  it('malformed: a command living longer than 1 hour, or with a short nonce', () => {
    const { chain, operator, certificate } = setup();
    const long = signEnvelope('command', commandDoc({ expires: at(61 * MINUTE) }), [operator], certificate);
    assert.throws(() => chain.verify(long, 'command', NOW), refused('malformed', /at most 1h/));
    const shortNonce = signEnvelope('command', commandDoc({ nonce: 'abcd' }), [operator], certificate);
    assert.throws(() => chain.verify(shortNonce, 'command', NOW), refused('malformed', /nonce/));
  });

  it('malformed: over the size cap, as bytes or as a parsed object, before anything is parsed', () => {
    const { roots } = setup();
    const chain = new TrustChain({ keys: roots.map((k) => k.public), threshold: 2 }, new MemoryTrustStore(), { maxBytes: 1024 });
    const big = `{${' '.repeat(2000)}`; // not even JSON: the size must be what refuses it
    assert.throws(() => chain.verify(big, 'config', NOW), refused('malformed', /over the 1024-byte limit/));
    assert.throws(() => chain.verify({ payload: 'x'.repeat(2000) }, 'config', NOW), refused('malformed', /over the 1024-byte limit/));
  });

  it('unsupported: an unknown payloadType, and a command where a config is expected', () => {
    const { chain, signConfig, operator, certificate } = setup();
    assert.throws(() => chain.verify({ ...signConfig(), payloadType: 'application/json' }, 'config', NOW), refused('unsupported'));
    const command = signEnvelope('command', commandDoc(), [operator], certificate);
    assert.throws(() => chain.verify(command, 'config', NOW), refused('unsupported', /expected a config envelope, got command/));
  });

  it('bad_signature: a tampered payload, a payloadType changed, a tampered certificate', () => {
    const { chain, signConfig, certificate } = setup();
    const good = signConfig();
    assert.throws(() => chain.verify(withPayload(good, configDoc({ config: { log: { level: 'error' } } })), 'config', NOW), refused('bad_signature'));
    // The type is part of what is signed (PAE): a config re-labelled as a command fails as such.
    const relabelled = { ...good, payloadType: 'application/vnd.edge-agent.command+json' };
    assert.throws(() => chain.verify(relabelled, 'command', NOW), refused('bad_signature'));
    const longerCert = withPayload(certificate, { ...JSON.parse(Buffer.from(certificate.payload, 'base64').toString()), expires: at(9999 * DAY) });
    assert.throws(() => chain.verify({ ...good, certificate: longerCert }, 'config', NOW), refused('bad_signature', /operator certificate/));
  });

  it('unknown_key: no certificate, a certificate by non-root keys, a document signed by another key than the certified one', () => {
    const { chain, signConfig, operator, roots } = setup();
    const { certificate: _c, ...bare } = signConfig();
    assert.throws(() => chain.verify(bare, 'config', NOW), refused('unknown_key', /no operator certificate/));
    const strangers = pairs(2);
    assert.throws(() => chain.verify(signConfig(configDoc(), operator, certify(strangers, operator)), 'config', NOW), refused('unknown_key'));
    const mallory = generatePair();
    assert.throws(() => chain.verify(signConfig(configDoc(), mallory), 'config', NOW), refused('unknown_key', /operator "alice"/));
    // A root key is not an operator key.
    assert.throws(() => chain.verify(signConfig(configDoc(), roots[0]!), 'config', NOW), refused('unknown_key'));
  });

  it('threshold_not_met: a certificate signed by one root key where two are needed, even twice', () => {
    const { chain, signConfig, operator, roots } = setup(3, 2);
    const once = certify([roots[0]!], operator);
    assert.throws(() => chain.verify(signConfig(configDoc(), operator, once), 'config', NOW), refused('threshold_not_met', /signed by 1 keys.*2 needed/));
    const twice = { ...once, signatures: [once.signatures[0]!, once.signatures[0]!] };
    assert.throws(() => chain.verify(signConfig(configDoc(), operator, twice), 'config', NOW), refused('threshold_not_met'));
    // Signed by the same key twice, each signature valid on its own: still one key.
    const doubled = certify([roots[0]!, roots[0]!], operator);
    assert.equal(doubled.signatures.length, 2);
    assert.throws(() => chain.verify(signConfig(configDoc(), operator, doubled), 'config', NOW), refused('threshold_not_met'));
    assert.equal(chain.verify(signConfig(configDoc(), operator, certify([roots[0]!, roots[2]!], operator)), 'config', NOW).document.kind, 'config');
  });

  it('revoked_key: an operator on the revocation list, certificate still valid', () => {
    const { chain, signConfig, operator, roots } = setup();
    assert.ok(chain.verify(signConfig(), 'config', NOW));
    chain.acceptRevocations(signEnvelope('revocations', revocationsDoc(1, [keyIdOf(operator.public)]), roots.slice(0, 2)), NOW);
    assert.throws(() => chain.verify(signConfig(), 'config', NOW), refused('revoked_key', /revocation list version 1/));
  });

  it('expired_key: a certificate past its expiry (a fresh document does not help)', () => {
    const { chain, signConfig, operator, roots } = setup();
    const old = certify(roots.slice(0, 2), operator, { issued: at(-100 * DAY), expires: at(-MINUTE) });
    assert.throws(() => chain.verify(signConfig(configDoc(), operator, old), 'config', NOW), refused('expired_key'));
    const future = certify(roots.slice(0, 2), operator, { issued: at(10 * MINUTE) });
    assert.throws(() => chain.verify(signConfig(configDoc(), operator, future), 'config', NOW), refused('not_yet_valid', /certificate/));
  });

  it('expired and not_yet_valid: the document itself', () => {
    const { chain, signConfig } = setup();
    assert.throws(() => chain.verify(signConfig(configDoc({ expires: at(-1000) })), 'config', NOW), refused('expired'));
    assert.throws(() => chain.verify(signConfig(configDoc({ expires: rfc3339(NOW) })), 'config', NOW), refused('expired'));
    assert.throws(() => chain.verify(signConfig(configDoc({ issued: at(6 * MINUTE) })), 'config', NOW), refused('not_yet_valid'));
  });
});

describe('checking an accepted envelope again later', () => {
  it('with the time it was accepted as now: times as then, revocations as now', () => {
    const { chain, signConfig, operator, roots } = setup();
    const envelope = signConfig(configDoc({ expires: at(MINUTE) }));
    const later = new Date(NOW.getTime() + DAY);
    assert.throws(() => chain.verify(envelope, 'config', later), refused('expired'));
    assert.equal(chain.verify(envelope, 'config', NOW).document.version, 1);
    chain.acceptRevocations(signEnvelope('revocations', revocationsDoc(1, [keyIdOf(operator.public)]), roots), NOW);
    assert.throws(() => chain.verify(envelope, 'config', NOW), refused('revoked_key'));
  });
});

describe('revocation lists', () => {
  it('need the root threshold, and never go back to an older version', () => {
    const { chain, roots, operator } = setup(3, 2);
    const id = keyIdOf(operator.public);
    assert.throws(() => chain.acceptRevocations(signEnvelope('revocations', revocationsDoc(1, [id]), [roots[0]!]), NOW), refused('threshold_not_met'));
    assert.throws(() => chain.acceptRevocations(signEnvelope('revocations', revocationsDoc(1, [id]), [operator]), NOW), refused('unknown_key'));
    assert.deepEqual(chain.acceptRevocations(signEnvelope('revocations', revocationsDoc(2, [id]), roots.slice(1)), NOW), { version: 2, changed: true });
    const again = signEnvelope('revocations', revocationsDoc(2, [id]), roots.slice(0, 2));
    assert.deepEqual(chain.acceptRevocations(again, NOW), { version: 2, changed: false });
    assert.throws(() => chain.acceptRevocations(signEnvelope('revocations', revocationsDoc(1, []), roots), NOW), refused('older_version'));
    assert.throws(() => chain.acceptRevocations(signEnvelope('revocations', revocationsDoc(2, []), roots), NOW), refused('older_version'));
    assert.throws(() => chain.acceptRevocations(signEnvelope('revocations', revocationsDoc(3, [], { expires: at(-1) }), roots), NOW), refused('expired'));
    assert.equal(chain.revocations?.version, 2);
    assert.ok(chain.revocations?.keys.has(id));
  });
});

describe('root rotation', () => {
  it('goes 1 → 2 → 3, each signed by the old and the new threshold; old keys stop counting', () => {
    const { chain, roots, operator, store } = setup(3, 2);
    const v2keys = [roots[0]!, ...pairs(2)];
    const v2 = signEnvelope('root', rootDoc(2, v2keys, 2), [roots[0]!, roots[1]!, v2keys[1]!]);
    assert.deepEqual(chain.acceptRoot(v2, NOW), { version: 2, changed: true });
    assert.deepEqual(chain.acceptRoot(v2, NOW), { version: 2, changed: false });
    const v3keys = pairs(1);
    const v3 = signEnvelope('root', rootDoc(3, v3keys, 1), [v2keys[1]!, v2keys[2]!, v3keys[0]!]);
    assert.deepEqual(chain.acceptRoot(v3, NOW), { version: 3, changed: true });
    assert.equal(chain.root.threshold, 1);
    // A certificate by version 1's keys no longer chains.
    const oldCert = certify(roots.slice(0, 2), operator);
    assert.throws(() => chain.verify(signEnvelope('config', configDoc(), [operator], oldCert), 'config', NOW), refused('unknown_key'));
    assert.ok(chain.verify(signEnvelope('config', configDoc(), [operator], certify(v3keys, operator, { root_version: 3 })), 'config', NOW));
    // Persisted: a new chain on the same store and anchor starts at version 3.
    const again = new TrustChain({ keys: roots.map((k) => k.public), threshold: 2 }, store);
    assert.equal(again.root.version, 3);
    assert.throws(() => again.acceptRoot(v2, NOW), refused('older_version'));
  });

  it('refuses 1 → 3, and takes the chain [3, 2] as an array (versions the device has skipped)', () => {
    const { chain, roots } = setup(3, 2);
    const v2keys = pairs(3);
    const v3keys = pairs(2);
    const v1 = signEnvelope('root', rootDoc(1, roots, 2), roots);
    const v2 = signEnvelope('root', rootDoc(2, v2keys, 2, { expires: at(-DAY) }), [...roots.slice(0, 2), ...v2keys.slice(0, 2)]);
    const v3 = signEnvelope('root', rootDoc(3, v3keys, 2), [...v2keys.slice(1), ...v3keys]);
    assert.throws(() => chain.acceptRoot(v3, NOW), refused('unknown_key', /send every version after 1/));
    assert.equal(chain.root.version, 1);
    // v2 has expired since; as a step on the way to v3 it is still taken.
    assert.deepEqual(chain.acceptRoot(JSON.stringify([v3, v1, v2, v2]), NOW), { version: 3, changed: true });
    assert.deepEqual(chain.acceptRoot([v1, v2, v3], NOW), { version: 3, changed: false });
  });

  it('refuses a new root without the old threshold, without its own threshold, expired, or with a gap in a chain', () => {
    const { chain, roots } = setup(3, 2);
    const next = pairs(3);
    const doc = rootDoc(2, next, 2);
    assert.throws(() => chain.acceptRoot(signEnvelope('root', doc, next), NOW), refused('unknown_key', /root version 1/));
    assert.throws(() => chain.acceptRoot(signEnvelope('root', doc, [roots[0]!, ...next]), NOW), refused('threshold_not_met', /root version 1/));
    assert.throws(() => chain.acceptRoot(signEnvelope('root', doc, [...roots, next[0]!]), NOW), refused('threshold_not_met', /its own keys/));
    assert.throws(() => chain.acceptRoot(signEnvelope('root', doc, roots), NOW), refused('unknown_key', /its own keys/));
    const expired = rootDoc(2, next, 2, { expires: at(-1) });
    assert.throws(() => chain.acceptRoot(signEnvelope('root', expired, [...roots, ...next]), NOW), refused('expired'));
    const tampered = withPayload(signEnvelope('root', doc, [...roots, ...next]), rootDoc(2, pairs(3), 1));
    assert.throws(() => chain.acceptRoot(tampered, NOW), refused('bad_signature'));
    const v4 = signEnvelope('root', rootDoc(4, next, 2), [...roots, ...next]);
    assert.throws(() => chain.acceptRoot([v4], NOW), refused('unknown_key'));
    assert.throws(() => chain.acceptRoot(signEnvelope('root', rootDoc(2, next, 4), [...roots, ...next]), NOW), refused('malformed', /threshold 4/));
    assert.throws(() => chain.acceptRoot(signEnvelope('revocations', revocationsDoc(2, []), roots), NOW), refused('unsupported'));
    assert.equal(chain.root.version, 1);
  });
});

/** A signature over any bytes, by this test's own route to node:crypto (the JWK with both halves). */
function signOver(payloadType: string, payload: Buffer, key: Ed25519Pair) {
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.public, d: key.private }, format: 'jwk' });
  return [{ keyid: keyIdOf(key.public), sig: sign(null, pae(payloadType, payload), privateKey).toString('base64') }];
}
