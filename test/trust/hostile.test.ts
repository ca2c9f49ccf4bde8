/**
 * Whatever arrives on a fleet topic, TrustChain answers with a Refusal and a reason, never with another
 * exception: random bytes, random JSON, and valid envelopes with one field replaced by a random value.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isRefusal, REFUSAL_REASONS, signEnvelope } from '../../agent/trust/index.ts';
import { commandDoc, configDoc, NOW, setup } from './fixtures.ts';

const { chain, operator, certificate, roots, signConfig } = setup();
const config = signConfig();
const command = signEnvelope('command', commandDoc(), [operator], certificate);

/** Runs every entry point on `input`: each accepts, or refuses with a known reason. */
function onlyRefusals(input: unknown): void {
  for (const run of [
    () => chain.verify(input, 'config', NOW),
    () => chain.verify(input, 'command', NOW),
    () => chain.acceptRevocations(input, NOW),
    () => chain.acceptRoot(input, NOW),
  ]) {
    try {
      run();
    } catch (err) {
      assert.ok(isRefusal(err), `not a Refusal: ${String(err)} for ${JSON.stringify(input)?.slice(0, 200)}`);
      assert.ok((REFUSAL_REASONS as readonly string[]).includes(err.reason));
    }
  }
}

const anyJson = fc.jsonValue({ maxDepth: 4 });

test('random bytes and random JSON are refused, never thrown otherwise', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => onlyRefusals(bytes)),
    { numRuns: 300, seed: 0x7e57 },
  );
  fc.assert(
    fc.property(anyJson, (value) => {
      onlyRefusals(value);
      onlyRefusals(JSON.stringify(value) ?? '');
    }),
    { numRuns: 300, seed: 0x7e58 },
  );
});

test('a valid envelope with one field (its own, its signature\u2019s or its certificate\u2019s) replaced is refused or still valid', () => {
  const paths: ((e: typeof config, v: unknown) => unknown)[] = [
    (e, v) => ({ ...e, payloadType: v }),
    (e, v) => ({ ...e, payload: v }),
    (e, v) => ({ ...e, signatures: v }),
    (e, v) => ({ ...e, signatures: [{ ...e.signatures[0], keyid: v }] }),
    (e, v) => ({ ...e, signatures: [{ ...e.signatures[0], sig: v }] }),
    (e, v) => ({ ...e, certificate: v }),
    (e, v) => ({ ...e, certificate: { ...e.certificate, payload: v } }),
    (e, v) => ({ ...e, certificate: { ...e.certificate, signatures: [v] } }),
    (e, v) => ({ ...e, payload: Buffer.from(JSON.stringify(v) ?? '').toString('base64') }),
  ];
  fc.assert(
    fc.property(fc.constantFrom(config, command), fc.nat(paths.length - 1), anyJson, (envelope, which, value) => onlyRefusals(paths[which]!(envelope, value))),
    { numRuns: 500, seed: 0x7e59 },
  );
  // And the document inside, re-signed so that only its content is odd.
  fc.assert(
    fc.property(fc.constantFrom('target', 'version', 'issued', 'expires', 'config'), anyJson, (field, value) => {
      onlyRefusals(signEnvelope('config', { ...configDoc(), [field]: value } as never, [operator], certificate));
      onlyRefusals(signEnvelope('root', { kind: 'root', version: 2, threshold: 1, keys: [roots[0]!.public], [field]: value } as never, roots));
    }),
    { numRuns: 200, seed: 0x7e5a },
  );
});
