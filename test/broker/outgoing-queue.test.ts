import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENTRY_OVERHEAD_BYTES, OutgoingQueues, type DroppedMessage } from '../../agent/broker/outgoing-queue.ts';

// The rules of the embedded broker's outgoing queue, each as aedes meets it. The whole (aedes sending from it
// over cut connections to the mqtt source) is proved in test/sources/mqtt-source.test.ts.

const client = { id: 'source' };
const message = (counter: number) => ({ cmd: 'publish', brokerId: 'b', brokerCounter: counter, topic: 't', payload: Buffer.from(`${counter}`), qos: 2 });

async function readAll(queues: OutgoingQueues): Promise<Record<string, unknown>[]> {
  const packets: Record<string, unknown>[] = [];
  for await (const packet of queues.outgoingStream(client)) packets.push(packet as Record<string, unknown>);
  return packets;
}

describe('embedded broker: outgoing queue', () => {
  it('a message sent on two paths goes out under the packet id it was first given, marked DUP', async () => {
    const queues = new OutgoingQueues();
    await queues.outgoingEnqueueCombi([{ clientId: client.id }], message(1));
    const live = { ...message(1), messageId: 10 };
    await queues.outgoingUpdate(client, live);
    const fromQueue = { ...message(1), messageId: 11 };
    await queues.outgoingUpdate(client, fromQueue);
    assert.equal(live.messageId, 10);
    assert.equal(fromQueue.messageId, 10, 'the second path is made to send the same id');
    assert.equal((fromQueue as { dup?: boolean }).dup, true);
  });

  it('once PUBREC came back, the message is sent again only as its PUBREL; once PUBCOMP came back, not at all', async () => {
    const queues = new OutgoingQueues();
    await queues.outgoingEnqueue({ clientId: client.id }, message(1));
    await queues.outgoingUpdate(client, { ...message(1), messageId: 7 });
    await queues.outgoingUpdate(client, { cmd: 'pubrel', messageId: 7 });
    assert.deepEqual(await readAll(queues), [{ cmd: 'pubrel', messageId: 7 }]);
    const stale = { ...message(1), messageId: 7, properties: { userProperties: {} } } as Record<string, unknown> & { cmd: string };
    await queues.outgoingUpdate(client, stale);
    assert.equal(stale.cmd, 'pubrel');
    assert.equal(stale.properties, undefined, 'no PUBLISH properties in a PUBREL');

    const removed = await queues.outgoingClearMessageId(client, { messageId: 7 });
    assert.equal(removed?.brokerCounter, 1);
    assert.equal(queues.size(client.id), 0);
    await assert.rejects(queues.outgoingUpdate(client, { ...message(1), messageId: 7 }), /no such packet/);
    assert.deepEqual(await readAll(queues), []);
  });

  it('a clear without a packet id removes nothing; a message is queued once per client', async () => {
    const queues = new OutgoingQueues();
    await queues.outgoingEnqueue({ clientId: client.id }, message(1));
    await queues.outgoingEnqueue({ clientId: client.id }, message(1));
    await queues.outgoingEnqueue({ clientId: client.id }, message(2));
    assert.equal(await queues.outgoingClearMessageId(client, {}), undefined);
    assert.equal(queues.size(client.id), 2);
    const sent = await readAll(queues);
    assert.deepEqual(
      sent.map((p) => [p.brokerCounter, p.messageId, p.dup]),
      [
        [1, undefined, false],
        [2, undefined, false],
      ],
    );
  });

  it('the queue read at reconnect skips what completed while it was being read', async () => {
    const queues = new OutgoingQueues();
    for (const counter of [1, 2, 3]) {
      await queues.outgoingEnqueue({ clientId: client.id }, message(counter));
      await queues.outgoingUpdate(client, { ...message(counter), messageId: counter });
    }
    const read: unknown[] = [];
    for await (const packet of queues.outgoingStream(client)) {
      read.push((packet as { messageId: number }).messageId);
      if (read.length === 1) await queues.outgoingClearMessageId(client, { messageId: 2 });
    }
    assert.deepEqual(read, [1, 3]);
  });

  describe('bounds in bytes', () => {
    // Each message below is counted at 1000 bytes: payload, topic 't' and the fixed overhead.
    const PAYLOAD = 1000 - 1 - ENTRY_OVERHEAD_BYTES;
    const sized = (counter: number) => ({ ...message(counter), payload: Buffer.alloc(PAYLOAD, counter) });
    const counters = (packets: Record<string, unknown>[]) => packets.map((p) => p.brokerCounter);

    it("past a client's bound its oldest messages are dropped, each reported; the newest stay in order", async () => {
      const drops: DroppedMessage[] = [];
      const queues = new OutgoingQueues({ maxBytesPerClient: 3000, maxBytes: 1e9 }, (d) => drops.push(d));
      for (let counter = 1; counter <= 10; counter++) await queues.outgoingEnqueue({ clientId: client.id }, sized(counter));
      assert.equal(queues.bytes(client.id), 3000);
      assert.equal(queues.bytes(), 3000);
      assert.deepEqual(counters(await readAll(queues)), [8, 9, 10]);
      assert.equal(drops.length, 7);
      assert.deepEqual(drops[0], { reason: 'client_bytes', clientId: client.id, topic: 't', bytes: 1000 });
    });

    it('past the bound across clients the oldest message of any client is dropped', async () => {
      const drops: DroppedMessage[] = [];
      const queues = new OutgoingQueues({ maxBytesPerClient: 1e9, maxBytes: 4000 }, (d) => drops.push(d));
      await queues.outgoingEnqueueCombi([{ clientId: 'a' }, { clientId: 'b' }], sized(1));
      await queues.outgoingEnqueue({ clientId: 'a' }, sized(2));
      await queues.outgoingEnqueue({ clientId: 'b' }, sized(3));
      await queues.outgoingEnqueue({ clientId: 'b' }, sized(4));
      assert.deepEqual(
        drops.map((d) => [d.reason, d.clientId]),
        [['total_bytes', 'a']],
        "a's copy of message 1 was the oldest",
      );
      assert.equal(queues.bytes(), 4000);
      assert.deepEqual([queues.size('a'), queues.size('b')], [1, 3]);
    });

    it('a message larger than the bound alone is dropped; a dropped message in flight is forgotten, its late PUBACK clears nothing', async () => {
      const drops: DroppedMessage[] = [];
      const queues = new OutgoingQueues({ maxBytesPerClient: 1500, maxBytes: 1e9 }, (d) => drops.push(d));
      await queues.outgoingEnqueue({ clientId: client.id }, { ...message(1), payload: Buffer.alloc(2000) });
      assert.equal(queues.size(client.id), 0);
      assert.equal(queues.bytes(), 0);
      await queues.outgoingEnqueue({ clientId: client.id }, sized(2));
      await queues.outgoingUpdate(client, { ...sized(2), messageId: 5 });
      await queues.outgoingEnqueue({ clientId: client.id }, sized(3));
      assert.deepEqual(
        drops.map((d) => d.bytes),
        [2000 + 1 + ENTRY_OVERHEAD_BYTES, 1000],
      );
      assert.equal(await queues.outgoingClearMessageId(client, { messageId: 5 }), undefined);
      await assert.rejects(queues.outgoingUpdate(client, { ...sized(2), messageId: 5 }), /no such packet/, 'the dropped message is not sent again');
      assert.deepEqual(counters(await readAll(queues)), [3]);
      await queues.outgoingUpdate(client, { ...sized(3), messageId: 6 });
      await queues.outgoingClearMessageId(client, { messageId: 6 });
      assert.equal(queues.bytes(), 0, 'every byte counted is given back');
    });

    it('a payload that is a view on a larger buffer is kept as a copy of its own', async () => {
      const queues = new OutgoingQueues();
      const readBuffer = Buffer.alloc(64 * 1024, 7);
      await queues.outgoingEnqueue({ clientId: client.id }, { ...message(1), payload: readBuffer.subarray(100, 200) });
      const [queued] = await readAll(queues);
      const payload = queued!.payload as Buffer;
      assert.equal(payload.length, 100);
      assert.ok(payload.buffer.byteLength < readBuffer.length, 'the read buffer is not held');
    });
  });
});
