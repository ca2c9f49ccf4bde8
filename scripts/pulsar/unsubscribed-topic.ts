/**
 * What Pulsar does with acknowledged messages on a topic nobody subscribes to yet (a new device's topic
 * before the receiver's pattern subscription has found it). Four cases on a running standalone broker:
 *   A  no subscription, inactive-topic deletion on (Pulsar's default)
 *   B  the receiver's subscription created first
 *   C  no subscription, namespace retention 60 min
 *   D  no subscription, namespace inactive-topic deletion off (retention removed first)
 * Each produces 10 messages (all receipted), waits up to 40 s for the topic to be deleted while idle, then
 * reads it from Earliest. Changes public/default's policies: run it on a throwaway broker, e.g.
 *
 *   PULSAR_EXTRA_CONF=$'brokerDeleteInactiveTopicsEnabled=true\nbrokerDeleteInactiveTopicsFrequencySeconds=5\nbrokerDeleteInactiveTopicsMaxInactiveDurationSeconds=5' \
 *     scripts/pulsar/standalone.sh start     # prints DIR/ports.env
 *   set -a; . DIR/ports.env; set +a; node scripts/pulsar/unsubscribed-topic.ts
 *
 * (Pulsar's defaults are 60 s for both; 5 s only makes the run short.)
 */
import WebSocket from 'ws';

const web = `127.0.0.1:${process.env.PULSAR_WEB_PORT ?? ''}`;
const namespace = 'public/default';

function admin(path: string, method = 'GET', body?: unknown): Promise<Response> {
  return fetch(`http://${web}/admin/v2${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

function produce(topic: string, count: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${web}/ws/v2/producer/persistent/${namespace}/${topic}`);
    let receipts = 0;
    ws.on('open', () => {
      for (let i = 0; i < count; i++) ws.send(JSON.stringify({ payload: Buffer.from(`m${i}`).toString('base64'), context: String(i) }));
    });
    ws.on('message', (data) => {
      const reply = JSON.parse(String(data)) as { result: string };
      if (reply.result !== 'ok') return reject(new Error(String(data)));
      if (++receipts === count) {
        ws.close();
        resolve(receipts);
      }
    });
    ws.on('error', reject);
  });
}

/** Messages read (and acknowledged) from Earliest on subscription `receiver` within `ms`. */
function consume(topic: string, ms: number): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${web}/ws/v2/consumer/persistent/${namespace}/${topic}/receiver?subscriptionInitialPosition=Earliest`);
    let read = 0;
    ws.on('message', (data) => {
      read++;
      ws.send(JSON.stringify({ messageId: (JSON.parse(String(data)) as { messageId: string }).messageId }));
    });
    ws.on('error', () => {});
    setTimeout(() => {
      ws.close();
      resolve(read);
    }, ms);
  });
}

async function exists(topic: string): Promise<boolean> {
  const topics = (await (await admin(`/persistent/${namespace}`)).json()) as string[];
  return topics.includes(`persistent://${namespace}/${topic}`);
}

async function run(label: string, topic: string, subscribeFirst = false): Promise<void> {
  if (subscribeFirst) {
    const ready = Date.now() + 10_000;
    await consume(topic, 1_500);
    while (!(await exists(topic)) && Date.now() < ready) await new Promise((r) => setTimeout(r, 200));
  }
  const receipts = await produce(topic, 10);
  const start = Date.now();
  let deletedAfter: number | undefined;
  while (Date.now() - start < 40_000) {
    if (!(await exists(topic))) {
      deletedAfter = Math.round((Date.now() - start) / 1000);
      break;
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
  const read = await consume(topic, 5_000);
  const fate = deletedAfter === undefined ? 'kept for 40 s' : `deleted while idle after ${deletedAfter} s`;
  console.log(`${label}: ${receipts} receipts; topic ${fate}; read later from Earliest: ${read}`);
}

const tag = Date.now();
await run('A no subscription', `unsub-a-${tag}`);
await run('B subscription first', `unsub-b-${tag}`, true);
await admin(`/namespaces/${namespace}/retention`, 'POST', { retentionTimeInMinutes: 60, retentionSizeInMB: 100 });
await run('C retention 60 min, no subscription', `unsub-c-${tag}`);
await admin(`/namespaces/${namespace}/retention`, 'DELETE');
await admin(`/namespaces/${namespace}/inactiveTopicPolicies`, 'POST', {
  inactiveTopicDeleteMode: 'delete_when_no_subscriptions',
  maxInactiveDurationSeconds: 60,
  deleteWhileInactive: false,
});
await run('D inactive-topic deletion off, no subscription', `unsub-d-${tag}`);
