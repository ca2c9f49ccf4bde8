/**
 * test/vectors/fleet-v1.json against this implementation and against the spec written out here by hand
 * (PAE, key ids, signatures with node:crypto directly), so the vectors, the code and docs/remote.md cannot
 * drift apart unnoticed.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { isRefusal, MemoryTrustStore, TrustChain } from '../../agent/trust/index.ts';
import { makeFleetVectors } from '../../scripts/vectors/fleet-vectors.ts';

const file = JSON.parse(readFileSync(resolve(import.meta.dirname, '../vectors/fleet-v1.json'), 'utf8'));
type Envelope = { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[]; certificate?: Envelope };

test('the file is what the generator writes (regenerate with npm run vectors)', () => {
  assert.deepEqual(JSON.parse(JSON.stringify(makeFleetVectors())), file);
});

test('keys: public halves of the seeds, key ids as the spec defines them', () => {
  for (const key of file.keys) {
    assert.equal(Buffer.from(key.public, 'base64url').toString('hex'), key.publicHex);
    assert.equal(createHash('sha256').update(Buffer.from(key.publicHex, 'hex')).digest('hex').slice(0, 16), key.keyId);
  }
});

test('PAE and signatures, computed from the spec text without agent/trust', () => {
  const publicByKeyId = new Map<string, string>(file.keys.map((k: { keyId: string; public: string }) => [k.keyId, k.public]));
  for (const v of file.vectors) {
    const envelope = v.envelope as Envelope;
    const body = Buffer.from(envelope.payload, 'base64');
    assert.equal(body.toString('utf8'), v.payloadText);
    assert.equal(envelope.payloadType, `application/vnd.edge-agent.${v.kind}+json`);
    const type = Buffer.from(envelope.payloadType);
    const expected = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body]);
    assert.equal(expected.toString('hex'), v.pae, v.name);
    for (const { keyid, sig } of envelope.signatures) {
      const x = publicByKeyId.get(keyid);
      assert.ok(x, `${v.name}: signature by unknown key id ${keyid}`);
      const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
      assert.ok(verify(null, expected, key, Buffer.from(sig, 'base64')), `${v.name}: signature by ${keyid}`);
    }
  }
});

test('a device with the anchor accepts every vector at "now", and refuses each refusal with its reason', () => {
  const now = new Date(file.now);
  const anchor = { keys: file.anchor.root_keys, threshold: file.anchor.threshold };
  const byName = Object.fromEntries(file.vectors.map((v: { name: string; envelope: Envelope }) => [v.name, v.envelope]));
  const chain = new TrustChain(anchor, new MemoryTrustStore());
  assert.equal(chain.verify(byName.config, 'config', now).signer.name, 'alice');
  assert.equal(chain.verify(byName.command, 'command', now).document.nonce, '00112233445566778899aabbccddeeff');
  assert.deepEqual(chain.acceptRevocations(byName.revocations, now), { version: 1, changed: true });
  assert.deepEqual(chain.acceptRoot(byName['root-v2'], now), { version: 2, changed: true });
  const fresh = new TrustChain(anchor, new MemoryTrustStore());
  assert.equal(file.refusals.length, 11);
  for (const r of file.refusals) {
    assert.throws(
      () => fresh.verify(r.envelope, r.expect, new Date(r.now)),
      (err) => isRefusal(err, r.reason),
      r.name,
    );
  }
});
