/**
 * The retained status of an agent process: birth with its fields, the will on kill -9, the session counter
 * across starts, a stale will re-answered with a birth, a clean stop's offline status, and a command cut
 * short by kill -9 answered `interrupted` at the next start.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { fleetAgentDir, makeOperator, PREFIX, startAgentProcess, until, Watcher } from '../helpers/fleet.ts';

const DEVICE = 'gw-status';
const STATUS = `${PREFIX}/${DEVICE}/status`;

test('birth, will, session counter, stale will, clean stop, and an interrupted command across kill -9', async () => {
  const broker = await startMosquitto();
  const op = makeOperator();
  const { dir, config } = await fleetAgentDir(broker.url, DEVICE, op.root);
  const watch = await Watcher.connect(broker.url, [`${PREFIX}/#`]);
  let agent = startAgentProcess(config);
  try {
    await until(() => watch.json(STATUS)?.online === true, 'the first birth', 60_000, agent.stderr);
    const birth = watch.json(STATUS)!;
    assert.equal(birth.session, 1);
    assert.equal(birth.device, DEVICE);
    assert.equal(typeof birth.version, 'string');
    assert.equal(typeof birth.started, 'string');
    assert.equal(typeof (birth.config as { version: string }).version, 'string');
    assert.deepEqual((birth.config as { layers: { source: string }[] }).layers[0]!.source, 'local');
    assert.equal(typeof (birth.queue as { records: number }).records, 'number');
    assert.equal(typeof (birth.queue as { oldest_age_s: number }).oldest_age_s, 'number');
    assert.ok('gen' in (birth.sources as object));
    assert.ok(['connected', 'disconnected'].includes((birth.sink as { state: string }).state));
    assert.equal(birth.last_exit, undefined, 'a first start has no last exit');

    // kill -9: the broker publishes the will, retained.
    agent.child.kill('SIGKILL');
    await agent.exited;
    await until(() => watch.json(STATUS)?.online === false, 'the will', 30_000);
    assert.deepEqual(watch.json(STATUS), { online: false, session: 1, device: DEVICE });

    // A command in flight when the process died: its row, as the dead process left it (accepted, not terminal).
    const nonce = 'ab'.repeat(16);
    const db = new Database(join(dir, 'data', 'queue.db'));
    db.prepare(`INSERT INTO remote_commands (nonce, action, state, deadline_ms, updated_ms, reply_topic) VALUES (?, 'flush', 'accepted', ?, ?, ?)`).run(
      nonce,
      Date.now() + 600_000,
      Date.now(),
      `${PREFIX}/${DEVICE}/cmd/res`,
    );
    db.close();

    agent = startAgentProcess(config);
    await until(() => watch.json(STATUS)?.online === true && watch.json(STATUS)?.session === 2, 'the second birth', 60_000, agent.stderr);
    assert.deepEqual(watch.json(STATUS)!.last_exit, { reason: 'unclean' });
    await until(
      () => watch.all(`${PREFIX}/${DEVICE}/cmd/res`).some((r) => r.id === nonce && r.state === 'interrupted'),
      'the interrupted answer',
      30_000,
      agent.stderr,
    );
    const after = new Database(join(dir, 'data', 'queue.db'), { readonly: true });
    assert.equal(after.prepare('SELECT state FROM remote_commands WHERE nonce = ?').pluck().get(nonce), 'interrupted');
    after.close();

    // A stale will (an older session's offline status) retained on our topic: answered with a new birth.
    const mark = watch.messages.length;
    const since = () =>
      watch.messages
        .slice(mark)
        .filter((m) => m.topic === STATUS)
        .map((m) => JSON.parse(m.payload.toString()) as Record<string, unknown>);
    await watch.client.publishAsync(STATUS, JSON.stringify({ online: false, session: 1, device: DEVICE }), { qos: 1, retain: true });
    await until(
      () => {
        const seen = since();
        const stale = seen.findIndex((s) => s.online === false);
        return stale >= 0 && seen.slice(stale + 1).some((s) => s.online === true && s.session === 2);
      },
      'the stale will, then a birth re-asserted',
      30_000,
      agent.stderr,
    );
    // And what the broker keeps is the birth, as a newcomer sees it.
    const late = await Watcher.connect(broker.url, [STATUS]);
    try {
      await until(() => late.json(STATUS) !== undefined, 'the retained status', 10_000);
      assert.equal(late.json(STATUS)!.online, true);
      assert.equal(late.json(STATUS)!.session, 2);
    } finally {
      await late.close();
    }

    // A clean stop leaves an offline status, and the next start says why the last run ended.
    agent.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0);
    await until(() => watch.json(STATUS)?.online === false && watch.json(STATUS)?.session === 2, 'the offline status of a clean stop', 30_000);
    agent = startAgentProcess(config);
    await until(() => watch.json(STATUS)?.online === true && watch.json(STATUS)?.session === 3, 'the third birth', 60_000, agent.stderr);
    assert.equal((watch.json(STATUS)!.last_exit as { reason: string }).reason, 'signal SIGTERM');
  } finally {
    agent.child.kill('SIGKILL');
    await agent.exited;
    await watch.close();
    await broker.stop();
  }
});
