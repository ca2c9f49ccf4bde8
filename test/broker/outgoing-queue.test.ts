import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OutgoingQueues } from '../../agent/broker/outgoing-queue.ts';

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
});
