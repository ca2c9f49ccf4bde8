import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket } from 'mqtt';
import { DedupWindow } from '../../drivers/sources/mqtt/dedup.ts';

function packet(topic: string, payload: string, properties?: IPublishPacket['properties']): IPublishPacket {
  return { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, dup: false, retain: false, messageId: 1, properties };
}

describe('mqtt source dedup window', () => {
  it('remembers the latest `window` keys only, and the committed form restores them', () => {
    const w = new DedupWindow({ key: 'json_field', field: 'id', window: 3 }, undefined);
    const key = (id: number) => w.keyOf(packet('t', ''), { id })!;
    for (const id of [1, 2, 3, 4]) w.add(key(id));
    assert.equal(w.has(key(1)), false, 'the oldest key left the window');
    assert.ok([2, 3, 4].every((id) => w.has(key(id))));
    assert.equal(w.changed, true);
    const restored = new DedupWindow({ key: 'json_field', field: 'id', window: 3 }, { seen: w.encode() });
    assert.equal(w.changed, false);
    assert.ok([2, 3, 4].every((id) => restored.has(key(id))));
    assert.equal(restored.has(key(1)), false);
    // A smaller window after a config change keeps the newest keys.
    const smaller = new DedupWindow({ key: 'json_field', field: 'id', window: 1 }, { seen: w.encode() });
    assert.ok(smaller.has(key(4)) && !smaller.has(key(3)));
  });

  it('keys: per topic; a missing field or property gives none; the string "1" and the number 1 differ', () => {
    const byField = new DedupWindow({ key: 'json_field', field: 'id', window: 10 }, undefined);
    assert.notEqual(byField.keyOf(packet('a', ''), { id: 1 }), byField.keyOf(packet('b', ''), { id: 1 }));
    assert.notEqual(byField.keyOf(packet('a', ''), { id: 1 }), byField.keyOf(packet('a', ''), { id: '1' }));
    assert.equal(byField.keyOf(packet('a', ''), { other: 1 }), undefined);
    const byHash = new DedupWindow({ key: 'payload_hash', window: 10 }, undefined);
    assert.equal(byHash.keyOf(packet('a', 'x'), undefined), byHash.keyOf(packet('a', 'x'), undefined));
    assert.notEqual(byHash.keyOf(packet('a', 'x'), undefined), byHash.keyOf(packet('a', 'y'), undefined));
    const byProperty = new DedupWindow({ key: 'user_property', field: 'msg', window: 10 }, undefined);
    assert.equal(byProperty.keyOf(packet('a', ''), undefined), undefined);
    assert.equal(
      byProperty.keyOf(packet('a', 'x', { userProperties: { msg: 'm1' } }), undefined),
      byProperty.keyOf(packet('a', 'y', { userProperties: { msg: 'm1' } }), undefined),
    );
    const byCorrelation = new DedupWindow({ key: 'correlation_data', window: 10 }, undefined);
    assert.notEqual(
      byCorrelation.keyOf(packet('a', '', { correlationData: Buffer.from('c1') }), undefined),
      byCorrelation.keyOf(packet('a', '', { correlationData: Buffer.from('c2') }), undefined),
    );
  });
});
