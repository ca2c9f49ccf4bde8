/**
 * The control connection over MQTT 3.1.1 (`fleet.broker.protocol_version: 4`): birth and will as over MQTT 5,
 * and answers on `<p>/<device>/cmd/res` carrying the request's id, or the signed command's nonce. Also the
 * operator's `fleet command` over both protocol versions.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { fleetAgentDir, makeOperator, PREFIX, signedCommand, startAgentProcess, until, Watcher } from '../helpers/fleet.ts';

const DEVICE = 'gw-v4';
const RES = `${PREFIX}/${DEVICE}/cmd/res`;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['agent/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('MQTT 3.1.1: birth, will, answers on cmd/res by id; fleet command over 3.1.1 and 5; restart in process', async () => {
  const broker = await startMosquitto();
  const op = makeOperator();
  const { dir, config } = await fleetAgentDir(broker.url, DEVICE, op.root, { protocol: 4 });
  const watch = await Watcher.connect(broker.url, [`${PREFIX}/#`, `edge-agent/v1/#`], 4);
  let agent = startAgentProcess(config);
  try {
    await until(() => watch.json(`${PREFIX}/${DEVICE}/status`)?.online === true, 'the birth', 60_000, agent.stderr);
    await watch.client.publishAsync(`${PREFIX}/${DEVICE}/cmd`, JSON.stringify({ action: 'ping', id: 'one' }), { qos: 1 });
    await until(() => watch.all(RES).some((r) => r.id === 'one' && r.state === 'done'), 'the ping answer', 30_000, agent.stderr);
    const { envelope, nonce } = signedCommand(op, DEVICE, 'flush');
    await watch.client.publishAsync(`${PREFIX}/${DEVICE}/cmd`, JSON.stringify(envelope), { qos: 1 });
    await until(() => watch.all(RES).some((r) => r.id === nonce && r.state === 'done'), 'the signed flush done', 30_000, agent.stderr);
    assert.deepEqual(
      watch
        .all(RES)
        .filter((r) => r.id === nonce)
        .map((r) => r.state),
      ['accepted', 'done'],
    );

    // The operator's command tool, over 3.1.1 (answers matched by id) and over 5 (its own response topic).
    const common = ['fleet', 'command', '--broker', broker.url, '--prefix', PREFIX, '--device', DEVICE];
    const v4 = await cli([...common, '--mqtt-version', '4', '--action', 'ping']);
    assert.equal(v4.code, 0, v4.stderr);
    assert.equal((JSON.parse(v4.stdout.trim()) as { state: string }).state, 'done');
    const file = join(dir, 'pause.json');
    writeFileSync(file, JSON.stringify(signedCommand(op, DEVICE, 'source.pause', { name: 'gen' }).envelope));
    const signed = await cli([...common, '--signed', file]);
    assert.equal(signed.code, 0, signed.stderr);
    assert.deepEqual(
      signed.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { state: string }).state),
      ['accepted', 'done'],
    );
    const replay = await cli([...common, '--signed', file]);
    assert.equal(replay.code, 1);
    assert.equal((JSON.parse(replay.stdout.trim()) as { reason: string }).reason, 'replayed');
    const list = await cli(['fleet', 'list', '--broker', broker.url, '--prefix', PREFIX, '--mqtt-version', '4']);
    assert.match(list.stdout, /^gw-v4\s+yes\s+1\s/m);

    agent.child.kill('SIGKILL');
    await agent.exited;
    await until(() => watch.json(`${PREFIX}/${DEVICE}/status`)?.online === false, 'the will', 30_000);
    agent = startAgentProcess(config);
    await until(() => watch.json(`${PREFIX}/${DEVICE}/status`)?.session === 2, 'the second birth', 60_000, agent.stderr);

    // restart: answered done, then the agent stops and starts again in the same process (session 3).
    const restart = signedCommand(op, DEVICE, 'restart');
    await watch.client.publishAsync(`${PREFIX}/${DEVICE}/cmd`, JSON.stringify(restart.envelope), { qos: 1 });
    await until(() => watch.all(RES).some((r) => r.id === restart.nonce && r.state === 'done'), 'the restart done', 30_000, agent.stderr);
    await until(() => watch.json(`${PREFIX}/${DEVICE}/status`)?.session === 3, 'the birth after the restart', 60_000, agent.stderr);
    assert.equal((watch.json(`${PREFIX}/${DEVICE}/status`)!.last_exit as { reason: string }).reason, 'restart command');
    assert.equal(agent.child.exitCode, null, 'the same process');
  } finally {
    agent.child.kill('SIGKILL');
    await agent.exited;
    await watch.close();
    await broker.stop();
  }
});
