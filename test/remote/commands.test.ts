/**
 * Commands and the desired-config topics of one agent running as a process, against a real Mosquitto: every
 * malformed request answered with a refusal and counted, every signed-command refusal reason, mutating
 * commands answered accepted then done, and through all of it the agent keeps forwarding.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { generatePair, rfc3339, signEnvelope } from '../../agent/trust/index.ts';
import {
  type AgentProcess,
  fleetAgentDir,
  makeOperator,
  type Operator,
  PREFIX,
  signedCommand,
  signedConfig,
  signedRevocations,
  startAgentProcess,
  until,
  Watcher,
} from '../helpers/fleet.ts';

const DEVICE = 'gw-cmd';
const MAX = 8 * 1024;
const cmd = `${PREFIX}/${DEVICE}/cmd`;
const res = `${PREFIX}/${DEVICE}/cmd/res`;
const report = `${PREFIX}/${DEVICE}/config/report`;
const data = `edge-agent/v1/${DEVICE}/`;

let broker: Mosquitto;
let agent: AgentProcess;
let watch: Watcher;
let op: Operator;

before(async () => {
  broker = await startMosquitto();
  op = makeOperator();
  const { config } = await fleetAgentDir(broker.url, DEVICE, op.root, { groups: ['site-a'], fleetExtra: `  max_message_bytes: ${MAX}` });
  watch = await Watcher.connect(broker.url, [`${PREFIX}/#`, `${data}#`]);
  agent = startAgentProcess(config);
  await until(() => watch.json(`${PREFIX}/${DEVICE}/status`)?.online === true, 'the birth', 60_000, agent.stderr);
});

after(async () => {
  agent?.child.kill('SIGKILL');
  await agent?.exited;
  await watch?.close();
  await broker?.stop();
});

/** Sends `payload` with an MQTT 5 response address and waits for a terminal answer on it. */
async function ask(payload: string | Buffer): Promise<Record<string, unknown>[]> {
  const correlation = randomBytes(8);
  const responseTopic = `${PREFIX}/_op/${correlation.toString('hex')}`;
  await watch.client.publishAsync(cmd, payload, { qos: 1, properties: { responseTopic, correlationData: correlation } });
  const terminal = (r: Record<string, unknown>) => ['done', 'failed', 'refused', 'expired', 'interrupted'].includes(String(r.state));
  await until(() => watch.all(responseTopic, correlation).some(terminal), `an answer to ${String(payload).slice(0, 80)}`, 30_000, agent.stderr);
  return watch.all(responseTopic, correlation);
}

async function stillForwarding(): Promise<void> {
  assert.equal(agent.child.exitCode, null, `the agent exited: ${agent.stderr()}`);
  const before = watch.count(data);
  await until(() => watch.count(data) > before, 'more batches from the agent', 30_000, agent.stderr);
}

test('unsigned read-only actions are answered on the MQTT 5 response topic with the correlation data', async () => {
  const [ping] = await ask(JSON.stringify({ action: 'ping', id: 'p1' }));
  assert.equal(ping!.state, 'done');
  assert.equal(ping!.id, 'p1');
  assert.equal((ping!.result as { device: string }).device, DEVICE);
  const [stats] = await ask(JSON.stringify({ action: 'queue.stats' }));
  assert.equal(stats!.state, 'done');
  assert.equal(typeof (stats!.result as { records: number }).records, 'number');
  const [got] = await ask(JSON.stringify({ action: 'config.get' }));
  assert.equal(got!.state, 'done');
  assert.equal((got!.result as { config: { device: { id: string } } }).config.device.id, DEVICE);
  const [status] = await ask(JSON.stringify({ action: 'status' }));
  assert.equal((status!.result as { online: boolean }).online, true);
});

test('without a response topic (as over MQTT 3.1.1) the answer goes to <p>/<device>/cmd/res with the id', async () => {
  const v4 = await Watcher.connect(broker.url, [res], 4);
  try {
    await v4.client.publishAsync(cmd, JSON.stringify({ action: 'ping', id: 'v4-ping' }), { qos: 1 });
    await until(() => v4.all(res).some((r) => r.id === 'v4-ping' && r.state === 'done'), 'the answer on cmd/res', 30_000, agent.stderr);
  } finally {
    await v4.close();
  }
});

test('bad payloads on the command topic: each gets a refusal, the agent keeps forwarding', async () => {
  const cases: [string, string | Buffer, string][] = [
    ['random bytes', randomBytes(300), 'malformed'],
    ['huge', Buffer.alloc(MAX + 1000, 0x7b), 'malformed'],
    ['a JSON string', '"ping"', 'malformed'],
    ['an array', '[1,2,3]', 'malformed'],
    ['null', 'null', 'malformed'],
    ['action of the wrong type', JSON.stringify({ action: 42 }), 'malformed'],
    ['args of the wrong type', JSON.stringify({ action: 'ping', args: [1] }), 'malformed'],
    ['id of the wrong type', JSON.stringify({ action: 'ping', id: { a: 1 } }), 'malformed'],
    ['unknown action', JSON.stringify({ action: 'format.disk' }), 'unsupported'],
    ['mutating action unsigned', JSON.stringify({ action: 'restart' }), 'bad_signature'],
    ['an envelope with garbage', JSON.stringify({ payloadType: 5, payload: '%%%', signatures: 'x' }), 'malformed'],
    ['an envelope of another kind', JSON.stringify(signedConfig(op, { device: DEVICE }, 1, {})), 'unsupported'],
  ];
  for (const [what, payload, reason] of cases) {
    const answers = await ask(payload);
    const last = answers.at(-1)!;
    assert.equal(last.state, 'refused', `${what}: ${JSON.stringify(last)}`);
    if (what !== 'an envelope of another kind') assert.equal(last.reason, reason, `${what}: ${JSON.stringify(last)}`);
  }
  await stillForwarding();
});

test('bad payloads on every config and trust topic: refused and reported, the agent keeps forwarding', async () => {
  const topics = [`${PREFIX}/${DEVICE}/config`, `${PREFIX}/group/site-a/config`];
  for (const topic of topics) {
    for (const [what, payload] of [
      ['random bytes', randomBytes(200)],
      ['huge', Buffer.alloc(MAX + 1000, 0x20)],
      ['wrong types', JSON.stringify({ payloadType: [], payload: 7, signatures: {} })],
      ['a number', '12'],
    ] as [string, Buffer | string][]) {
      const seen = watch.all(report).length;
      await watch.client.publishAsync(topic, payload, { qos: 1 });
      await until(() => watch.all(report).length > seen, `a report for ${what} on ${topic}`, 30_000, agent.stderr);
      const r = watch.all(report).at(-1)!;
      assert.equal(r.outcome, 'refused', `${what} on ${topic}: ${JSON.stringify(r)}`);
      assert.equal(r.reason, 'malformed', `${what} on ${topic}: ${JSON.stringify(r)}`);
    }
    await watch.client.publishAsync(topic, '', { qos: 1, retain: true });
  }
  for (const topic of [`${PREFIX}/trust/root`, `${PREFIX}/trust/revocations`]) {
    for (const payload of [randomBytes(200), Buffer.alloc(MAX + 1000, 0x20), JSON.stringify({ payloadType: 1 })]) {
      await watch.client.publishAsync(topic, payload, { qos: 1 });
    }
  }
  // The refusals on the trust topics are counted: the status says so.
  const [status] = await ask(JSON.stringify({ action: 'status' }));
  const refused = (status!.result as { refused: Record<string, number> }).refused;
  assert.ok((refused.malformed ?? 0) >= 8 + 6, `refused: ${JSON.stringify(refused)}`);
  await stillForwarding();
});

test('a signed mutating command is answered accepted, then done; the source really pauses and resumes', async () => {
  const pause = await ask(JSON.stringify(signedCommand(op, DEVICE, 'source.pause', { name: 'gen' }).envelope));
  assert.deepEqual(
    pause.map((r) => r.state),
    ['accepted', 'done'],
  );
  const [status] = await ask(JSON.stringify({ action: 'status' }));
  assert.equal((status!.result as { sources: Record<string, string> }).sources.gen, 'paused');
  const resume = await ask(JSON.stringify(signedCommand(op, DEVICE, 'source.resume', { name: 'gen' }).envelope));
  assert.deepEqual(
    resume.map((r) => r.state),
    ['accepted', 'done'],
  );
  const level = await ask(JSON.stringify(signedCommand(op, DEVICE, 'log.level', { level: 'debug' }).envelope));
  assert.equal(level.at(-1)!.state, 'done');
  const badArgs = await ask(JSON.stringify(signedCommand(op, DEVICE, 'log.level', { level: 7 }).envelope));
  assert.equal(badArgs.at(-1)!.reason, 'malformed');
  const flush = await ask(JSON.stringify(signedCommand(op, DEVICE, 'flush').envelope));
  assert.equal(flush.at(-1)!.state, 'done');
  await stillForwarding();
});

test('a config for another device or another group is refused wrong_target; config.apply as a command commits', async () => {
  const cases: [string, string, object][] = [
    ['another device', `${PREFIX}/${DEVICE}/config`, signedConfig(op, { device: 'gw-other' }, 5, { log: { level: 'debug' } })],
    ['another group', `${PREFIX}/group/site-a/config`, signedConfig(op, { group: 'site-b' }, 5, { log: { level: 'debug' } })],
    ['a group document on the device topic', `${PREFIX}/${DEVICE}/config`, signedConfig(op, { group: 'site-a' }, 5, { log: { level: 'debug' } })],
  ];
  for (const [what, topic, envelope] of cases) {
    const seen = watch.all(report).length;
    await watch.client.publishAsync(topic, JSON.stringify(envelope), { qos: 1 });
    await until(() => watch.all(report).length > seen, `a report for ${what}`, 30_000, agent.stderr);
    const r = watch.all(report).at(-1)!;
    assert.equal(r.outcome, 'refused', `${what}: ${JSON.stringify(r)}`);
    assert.equal(r.reason, 'wrong_target', `${what}: ${JSON.stringify(r)}`);
  }
  // The same path through a command: accepted, then done with the pipeline's report.
  const envelope = signedConfig(op, { device: DEVICE }, 1, { sources: [{ name: 'gen', type: 'synthetic', rate: 25, batch: 5 }] });
  const answers = await ask(JSON.stringify(signedCommand(op, DEVICE, 'config.apply', { envelope }).envelope));
  assert.deepEqual(
    answers.map((r) => r.state),
    ['accepted', 'done'],
    JSON.stringify(answers),
  );
  assert.equal((answers[1]!.result as { outcome: string }).outcome, 'committed');
  await until(() => watch.json(report)?.outcome === 'committed', 'the committed report', 30_000, agent.stderr);
  await stillForwarding();
});

test('config refusals on a real device carry their reason: expired, expired key, unknown key, bad signature, replayed, older, schema, forbidden', async () => {
  // v1 of the device layer was committed by the test before; v3 now, so that v2 is older.
  const topic = `${PREFIX}/${DEVICE}/config`;
  const gen = (rate: number) => ({ sources: [{ name: 'gen', type: 'synthetic', rate, batch: 5 }] });
  const publish = async (what: string, envelope: unknown) => {
    const seen = watch.all(report).length;
    await watch.client.publishAsync(topic, JSON.stringify(envelope), { qos: 1 });
    await until(() => watch.all(report).length > seen, `a report for ${what}`, 60_000, agent.stderr);
    return watch.all(report).at(-1)!;
  };
  const committed = await publish('v3', signedConfig(op, { device: DEVICE }, 3, gen(30)));
  assert.equal(committed.outcome, 'committed', JSON.stringify(committed));

  const past = rfc3339(new Date(Date.now() - 60_000));
  const expiredCert = signEnvelope(
    'operator-cert',
    { kind: 'operator-cert', name: 'old', key: op.key.public, issued: rfc3339(new Date(Date.now() - 86_400_000)), expires: past, root_version: 1 } as never,
    [op.root],
  );
  const stranger = makeOperator('mallory'); // certified by a root the device does not know
  const tampered = signedConfig(op, { device: DEVICE }, 4, gen(31)) as { payload: string };
  tampered.payload = Buffer.from(Buffer.from(tampered.payload, 'base64').toString().replace('"rate":31', '"rate":99')).toString('base64');
  const doc = (version: number, config: Record<string, unknown>) => ({
    kind: 'config',
    target: { device: DEVICE },
    version,
    issued: rfc3339(new Date(Date.now() - 1_000)),
    expires: rfc3339(new Date(Date.now() + 3_600_000)),
    config,
  });
  const cases: [string, unknown, string][] = [
    ['an expired document', signedConfig(op, { device: DEVICE }, 4, gen(31), { expires: past }), 'expired'],
    ['an expired operator certificate', signEnvelope('config', doc(4, gen(31)) as never, [op.key], expiredCert), 'expired_key'],
    ['a key no root of this device certified', signedConfig(stranger, { device: DEVICE }, 4, gen(31)), 'unknown_key'],
    ['a tampered payload', tampered, 'bad_signature'],
    ['the committed version again, another document', signedConfig(op, { device: DEVICE }, 3, gen(32)), 'replayed'],
    ['an older version', signedConfig(op, { device: DEVICE }, 2, gen(33)), 'older_version'],
    ['a config the schema refuses', signedConfig(op, { device: DEVICE }, 4, { sources: [{ name: 'gen', type: 'synthetic', rate: 'fast' }] }), 'schema_invalid'],
    ['a config that sets device.id', signedConfig(op, { device: DEVICE }, 4, { device: { id: 'gw-stolen' } }), 'forbidden_setting'],
  ];
  for (const [what, envelope, reason] of cases) {
    const r = await publish(what, envelope);
    assert.equal(r.outcome, 'refused', `${what}: ${JSON.stringify(r)}`);
    assert.equal(r.reason, reason, `${what}: ${JSON.stringify(r)}`);
  }
  const running = (await ask(JSON.stringify({ action: 'config.get' }))).at(-1)!.result as { config: { sources: { name: string; rate: number }[] } };
  assert.equal(running.config.sources.find((x) => x.name === 'gen')?.rate, 30, 'still on v3');
  await stillForwarding();
});

test('signed-command refusals carry their reason: replayed, expired, bad signature, unknown key, wrong target, revoked key', async () => {
  // Replayed: the same envelope twice.
  const { envelope } = signedCommand(op, DEVICE, 'ping');
  assert.equal((await ask(JSON.stringify(envelope))).at(-1)!.state, 'done');
  const replay = (await ask(JSON.stringify(envelope))).at(-1)!;
  assert.equal(replay.state, 'refused');
  assert.equal(replay.reason, 'replayed');

  // The same command after its expiry: valid for 3 s, used once, sent again once expired.
  const short = signedCommand(op, DEVICE, 'ping', {}, 3_000);
  assert.equal((await ask(JSON.stringify(short.envelope))).at(-1)!.state, 'done');
  const expiresAt = Date.now() + 3_500;
  await until(() => Date.now() > expiresAt, 'the command to expire', 10_000);
  const late = (await ask(JSON.stringify(short.envelope))).at(-1)!;
  assert.equal(late.reason, 'expired', JSON.stringify(late));
  const lateFresh = (await ask(JSON.stringify(signedCommand(op, DEVICE, 'ping', {}, -1_000, {}).envelope))).at(-1)!;
  assert.equal(lateFresh.reason, 'expired', JSON.stringify(lateFresh));

  // Bad signature: the payload changed after signing.
  const tampered = signedCommand(op, DEVICE, 'flush').envelope;
  const doc = JSON.parse(Buffer.from(tampered.payload, 'base64').toString()) as Record<string, unknown>;
  tampered.payload = Buffer.from(JSON.stringify({ ...doc, action: 'restart' })).toString('base64');
  assert.equal((await ask(JSON.stringify(tampered))).at(-1)!.reason, 'bad_signature');

  // Unknown key: an operator certified by a root this device does not trust.
  const stranger = makeOperator('mallory', generatePair());
  assert.equal((await ask(JSON.stringify(signedCommand(stranger, DEVICE, 'flush').envelope))).at(-1)!.reason, 'unknown_key');

  // Wrong target: signed for another device.
  assert.equal((await ask(JSON.stringify(signedCommand(op, 'gw-other', 'flush').envelope))).at(-1)!.reason, 'wrong_target');

  // Revoked key: the root revokes the operator's key (retained), then the operator's command is refused.
  await watch.client.publishAsync(`${PREFIX}/trust/revocations`, JSON.stringify(signedRevocations(op.root, 1, [op.keyId])), { qos: 1, retain: true });
  await until(() => agent.stderr().includes('trust metadata accepted'), 'the revocation list accepted', 30_000, agent.stderr);
  const revoked = (await ask(JSON.stringify(signedCommand(op, DEVICE, 'flush').envelope))).at(-1)!;
  assert.equal(revoked.reason, 'revoked_key', JSON.stringify(revoked));

  const [status] = await ask(JSON.stringify({ action: 'status' }));
  const refused = (status!.result as { refused: Record<string, number> }).refused;
  for (const reason of ['replayed', 'expired', 'bad_signature', 'unknown_key', 'wrong_target', 'revoked_key']) {
    assert.ok((refused[reason] ?? 0) >= 1, `${reason} counted: ${JSON.stringify(refused)}`);
  }
  await stillForwarding();
});

test('a new root published on <p>/trust/root is taken; an operator certified by it is obeyed', async () => {
  const next = generatePair();
  const now = Date.now();
  const root2 = signEnvelope(
    'root',
    {
      kind: 'root',
      version: 2,
      threshold: 1,
      keys: [next.public],
      issued: rfc3339(new Date(now - 1_000)),
      expires: rfc3339(new Date(now + 86_400_000)),
    } as never,
    [op.root, next],
  );
  await watch.client.publishAsync(`${PREFIX}/trust/root`, JSON.stringify(root2), { qos: 1, retain: true });
  const newOperator = makeOperator('bob', next);
  // The certificate names root version 1 in makeOperator; a root-2 operator's names 2.
  const doc = JSON.parse(Buffer.from(newOperator.certificate.payload, 'base64').toString()) as Record<string, unknown>;
  newOperator.certificate = signEnvelope('operator-cert', { ...doc, root_version: 2 } as never, [next]);
  await until(() => /"kind":"root"[^\n]*trust metadata accepted/.test(agent.stderr()), 'the new root accepted', 30_000, agent.stderr);
  const answers = await ask(JSON.stringify(signedCommand(newOperator, DEVICE, 'flush').envelope));
  assert.deepEqual(
    answers.map((r) => r.state),
    ['accepted', 'done'],
    JSON.stringify(answers),
  );
  await stillForwarding();
});
