/**
 * The broker ACL of docs/remote.md ("Broker ACL"), run as written by a Mosquitto of our own with per-device
 * passwords: a real agent works under it, and one device's credentials can neither publish another device's
 * status or command responses nor read another device's commands.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { fleetAgentDir, makeOperator, startAgentProcess, until, Watcher } from '../helpers/fleet.ts';

/** The first ```text block after "## Broker ACL": the ACL exactly as the docs give it. */
function documentedAcl(): string {
  const doc = readFileSync('docs/remote.md', 'utf8');
  const section = doc.slice(doc.indexOf('## Broker ACL'));
  const match = /```text\n([\s\S]*?)```/.exec(section);
  assert.ok(match, 'docs/remote.md has the ACL block');
  return match[1]!;
}

test("the documented ACL: an agent works under it; a device's credentials reach only its own topics", async () => {
  const broker0 = await startMosquitto();
  const dir = broker0.dir;
  await broker0.stop();
  const passwd = join(dir, 'fleet.passwd');
  const secrets = { operator: 'op-secret', 'gw-a': 'a-secret', 'gw-b': 'b-secret' } as const;
  for (const [i, [user, secret]] of Object.entries(secrets).entries()) {
    execFileSync('mosquitto_passwd', [...(i === 0 ? ['-c'] : []), '-b', passwd, user, secret]);
  }
  writeFileSync(join(dir, 'fleet.acl'), documentedAcl());
  const broker = await startMosquitto({ extra: ['allow_anonymous false', `password_file ${passwd}`, `acl_file ${join(dir, 'fleet.acl')}`] });
  const op = makeOperator();
  const operator = await Watcher.connect(broker.url, ['edge-agent/#'], 5, { username: 'operator', password: secrets.operator });
  const { dir: agentDir, config } = await fleetAgentDir(broker.url, 'gw-a', op.root, {
    prefix: 'edge-agent',
    credentials: { username: 'gw-a', passwordFile: 'broker.secret' },
  });
  writeFileSync(join(agentDir, 'broker.secret'), `${secrets['gw-a']}\n`, { mode: 0o600 });
  const agent = startAgentProcess(config);
  // gw-a's credentials in a client of their own (a fresh one per attempt: a refused publish ends the connection).
  const asGwA = () =>
    mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'gw-a-probe', username: 'gw-a', password: secrets['gw-a'], reconnectPeriod: 0 });
  let probe = await asGwA();
  try {
    // Anonymous connections are refused outright.
    await assert.rejects(mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'anon', reconnectPeriod: 0, connectTimeout: 5_000 }));

    // A real agent runs under the ACL: its birth, its data, its answer to a ping.
    await until(() => operator.json('edge-agent/gw-a/status')?.online === true, "gw-a's birth", 60_000, agent.stderr);
    await until(() => operator.count('edge-agent/v1/gw-a/') > 0, "gw-a's batches", 60_000, agent.stderr);
    const correlation = Buffer.from('acl-ping');
    await operator.client.publishAsync('edge-agent/gw-a/cmd', JSON.stringify({ action: 'ping' }), {
      qos: 1,
      properties: { responseTopic: 'edge-agent/_operator/acl/res', correlationData: correlation },
    });
    await until(() => operator.all('edge-agent/_operator/acl/res', correlation).some((r) => r.state === 'done'), 'the ping answered', 30_000, agent.stderr);

    // gw-a's credentials publishing as gw-b: the broker refuses (MQTT 5 PUBACK "not authorized").
    for (const topic of ['edge-agent/gw-b/status', 'edge-agent/gw-b/cmd/res', 'edge-agent/gw-b/config/report']) {
      await probe.endAsync(true);
      probe = await asGwA();
      await assert.rejects(
        probe.publishAsync(topic, JSON.stringify({ online: true, device: 'gw-b', forged: true }), { qos: 1, retain: true }),
        /not authori[sz]ed|135/i,
      );
    }
    // Its own topics it may publish: the marker shows the operator received everything the probe got through.
    await probe.endAsync(true);
    probe = await asGwA();
    await probe.publishAsync('edge-agent/gw-a/cmd/res', JSON.stringify({ marker: 1 }), { qos: 1 });
    await until(() => operator.all('edge-agent/gw-a/cmd/res').some((r) => r.marker === 1), 'the marker', 10_000);
    assert.equal(operator.messages.filter((m) => m.topic.startsWith('edge-agent/gw-b/')).length, 0, 'nothing forged reached the operator');

    // Reading another device's commands: neither by name nor through a wildcard.
    const received: string[] = [];
    probe.on('message', (topic) => received.push(topic));
    await probe.subscribeAsync(['edge-agent/gw-b/cmd', 'edge-agent/+/cmd'], { qos: 1 });
    await operator.client.publishAsync('edge-agent/gw-b/cmd', JSON.stringify({ action: 'ping', id: 'for-b' }), { qos: 1 });
    await operator.client.publishAsync('edge-agent/gw-a/cmd', JSON.stringify({ action: 'ping', id: 'for-a' }), { qos: 1 });
    await until(() => received.includes('edge-agent/gw-a/cmd'), "the probe gets gw-a's own command", 10_000);
    assert.deepEqual(
      received.filter((t) => t.includes('gw-b')),
      [],
      "gw-b's command never reached gw-a's credentials",
    );
    assert.equal(agent.child.exitCode, null);
  } finally {
    await probe.endAsync(true);
    agent.child.kill('SIGKILL');
    await agent.exited;
    await operator.close();
    await broker.stop();
  }
});
