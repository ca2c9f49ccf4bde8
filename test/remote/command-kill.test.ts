/**
 * A signed command really in flight when the agent is killed: `config.apply` waits for the health gate (the
 * canary batch is never acknowledged: nobody subscribes to the data, so Mosquitto answers "no matching
 * subscribers"), the agent is killed with SIGKILL after `accepted`, and the next start answers the command
 * `interrupted`, its row terminal in the queue file, on the response address the request gave.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { fleetAgentDir, makeOperator, PREFIX, signedCommand, signedConfig, startAgentProcess, until, Watcher } from '../helpers/fleet.ts';

const DEVICE = 'gw-kill';

test('a command in flight at kill -9 is answered interrupted at the next start', async () => {
  const broker = await startMosquitto();
  const op = makeOperator();
  const { dir, config } = await fleetAgentDir(broker.url, DEVICE, op.root, { healthDeadline: '60s' });
  // The operator watches the fleet topics only: no subscriber for the data, so no batch is ever acknowledged.
  const watch = await Watcher.connect(broker.url, [`${PREFIX}/#`]);
  let agent = startAgentProcess(config);
  try {
    await until(() => watch.json(`${PREFIX}/${DEVICE}/status`)?.online === true, 'the birth', 60_000, agent.stderr);
    const envelope = signedConfig(op, { device: DEVICE }, 1, { sources: [{ name: 'gen', type: 'synthetic', rate: 7, batch: 5 }] });
    const { envelope: command, nonce } = signedCommand(op, DEVICE, 'config.apply', { envelope }, 600_000);
    const correlation = randomBytes(8);
    const responseTopic = `${PREFIX}/_op/kill`;
    await watch.client.publishAsync(`${PREFIX}/${DEVICE}/cmd`, JSON.stringify(command), {
      qos: 1,
      properties: { responseTopic, correlationData: correlation },
    });
    await until(() => watch.all(responseTopic, correlation).some((r) => r.state === 'accepted'), 'accepted', 30_000, agent.stderr);
    const rows = new Database(join(dir, 'data', 'queue.db'), { readonly: true });
    assert.equal(rows.prepare('SELECT state FROM remote_commands WHERE nonce = ?').pluck().get(nonce), 'accepted');
    rows.close();
    // Killed between apply and commit: once the pending configuration is written (it follows `accepted`).
    await until(() => existsSync(join(dir, 'data', 'remote', 'pending.json')), 'the pending configuration', 30_000, agent.stderr);
    agent.child.kill('SIGKILL');
    await agent.exited;
    assert.deepEqual(
      watch.all(responseTopic, correlation).map((r) => r.state),
      ['accepted'],
    );

    agent = startAgentProcess(config);
    await until(() => watch.all(responseTopic, correlation).some((r) => r.state === 'interrupted'), 'interrupted', 60_000, agent.stderr);
    const answers = watch.all(responseTopic, correlation);
    assert.deepEqual(
      answers.map((r) => r.state),
      ['accepted', 'interrupted'],
    );
    assert.equal(answers[1]!.id, nonce);
    const after = new Database(join(dir, 'data', 'queue.db'), { readonly: true });
    assert.equal(after.prepare('SELECT state FROM remote_commands WHERE nonce = ?').pluck().get(nonce), 'interrupted');
    after.close();
    // The config it was applying is reported rolled back (interrupted), and the same command again is a replay.
    await until(() => watch.json(`${PREFIX}/${DEVICE}/config/report`)?.reason === 'interrupted', 'the rolled-back report', 30_000, agent.stderr);
    const again = randomBytes(8);
    await watch.client.publishAsync(`${PREFIX}/${DEVICE}/cmd`, JSON.stringify(command), { qos: 1, properties: { responseTopic, correlationData: again } });
    await until(() => watch.all(responseTopic, again).some((r) => r.state === 'refused'), 'the replay refused', 30_000, agent.stderr);
    assert.equal(watch.all(responseTopic, again)[0]!.reason, 'replayed');
  } finally {
    agent.child.kill('SIGKILL');
    await agent.exited;
    await watch.close();
    await broker.stop();
  }
});
