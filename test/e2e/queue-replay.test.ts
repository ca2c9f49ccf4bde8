import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { readExport } from '../../agent/queue/export-format.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { jsonLines, runCli, until } from '../helpers/processes.ts';
import { queueCli } from '../helpers/queue-tools.ts';

interface Line {
  epoch: string;
  seq: number;
  record: { n: number };
}

const TOTAL = Number(process.env.QUEUE_REPLAY_E2E_RECORDS ?? 3_000);

function queuedRecords(path: string): number {
  if (!existsSync(path)) return -1;
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT coalesce(sum(count), 0) FROM chunks').pluck().get() as number;
  } catch (err) {
    if (/no such table/.test(String(err))) return -1;
    throw err;
  } finally {
    db.close();
  }
}

// The centre already holds the gateway's first batches, but their acknowledgements never come back (the
// broker's ACL keeps them from the gateway), so they are still in the queue, numbered. Export,
// purge and replay them with everything else, then let the agent deliver: the centre must end with every
// record exactly once, which it can only if the replayed batches kept (epoch, seq) and were dropped as
// duplicates.
test('export → purge → replay against a real receiver: identical records at the centre, none twice', async () => {
  const ws = await workspace();
  const acl = join(ws.dir, 'acl');
  // The gateway may not read its acknowledgements (its subscription is refused). Refusing the receiver's
  // publish instead would make Mosquitto drop the receiver's MQTT 5 connection at every acknowledgement.
  writeFileSync(acl, 'topic readwrite edge-agent/v1/+/+\ntopic write edge-agent/v1/+/+/ack\n');
  const broker = await startMosquitto({ extra: [`acl_file ${acl}`] });
  const out = join(ws.dir, 'received.jsonl');
  const queuePath = join(ws.dir, 'data', 'queue.db');
  const yaml = (ackBy: 'centre' | 'broker') =>
    `${agentYaml(broker.url, {
      sources: `  - { type: synthetic, name: gen, rate: 0, batch: 100, count: ${TOTAL} }`,
    })
      .replace(
        '  reconnect: { initial_delay: 50ms, max_delay: 500ms }\n',
        `  reconnect: { initial_delay: 50ms, max_delay: 500ms }\n  acknowledged_by: ${ackBy}\n`,
      )
      .replace('sender:\n', 'sender:\n  max_in_flight: 2\n  centre_ack_timeout: 1s\n  centre_ack_max_timeout: 2s\n')
      .replace('receiver:\n', 'batch:\n  max_records: 100\nreceiver:\n')}  output: ${out}\n`;
  const gateway = writeConfig(ws.dir, yaml('centre'), 'gateway.yaml');
  const centre = writeConfig(ws.dir, yaml('centre').replace('level: warn', 'level: info'), 'centre.yaml');
  const receiver = runCli(['receive', '--config', centre.path]);
  let agent: ReturnType<typeof runCli> | undefined;
  try {
    await receiver.stderrMatches(/"msg":"subscribed"/);
    agent = runCli(['run', '--config', gateway.path]);
    await until(() => jsonLines<Line>(out).length >= 200 && queuedRecords(queuePath) === TOTAL, 'two batches at the centre, every record still queued', 60_000);
    agent.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0, agent.stderr());
    const before = jsonLines<Line>(out);
    const delivered = new Set(before.map((l) => `${l.epoch}:${l.seq}`));

    const exportFile = join(ws.dir, 'queue.cbor');
    const exported = await queueCli(['export', '--config', gateway.path, '--format', 'cbor', '--out', exportFile]);
    assert.equal(exported.code, 0, exported.stderr);
    const reader = await readExport(exportFile);
    const numbered: string[] = [];
    let exportedRecords = 0;
    for await (const unit of reader.units) {
      exportedRecords += unit.records.length;
      if (unit.seq !== null) numbered.push(`${reader.header.epoch}:${unit.seq}`);
    }
    assert.equal(exportedRecords, TOTAL);
    assert.ok(numbered.length >= 2, `numbered batches in the export: ${numbered.join(', ')}`);
    assert.ok(
      numbered.every((key) => delivered.has(key)),
      `every numbered batch exported is one the centre holds: ${numbered.join(', ')} vs ${[...delivered].join(', ')}`,
    );

    const purged = await queueCli(['purge', '--config', gateway.path, '--from-export', exportFile, '--yes']);
    assert.equal(purged.code, 0, purged.stderr);
    assert.equal(queuedRecords(queuePath), 0);
    const replayed = await queueCli(['replay', exportFile, '--config', gateway.path, '--yes']);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.equal(queuedRecords(queuePath), TOTAL);

    // Delivered on the broker's acknowledgement this time (the centre's cannot pass the ACL).
    agent = runCli(['run', '--config', writeConfig(ws.dir, yaml('broker'), 'gateway-broker.yaml').path]);
    await until(
      () => new Set(jsonLines<Line>(out).map((l) => l.record.n)).size >= TOTAL && queuedRecords(queuePath) === 0,
      'every record at the centre and the queue empty',
      120_000,
      () => `have ${new Set(jsonLines<Line>(out).map((l) => l.record.n)).size}; agent: ${agent?.stderr().slice(-1500)}`,
    );
    // The replayed batches left first (recorded batches do), so the centre has handled them by now.
    const lines = jsonLines<Line>(out);
    const counts = new Map<number, number>();
    for (const l of lines) counts.set(l.record.n, (counts.get(l.record.n) ?? 0) + 1);
    assert.deepEqual(
      [...counts.keys()].sort((a, b) => a - b),
      Array.from({ length: TOTAL }, (_, i) => i + 1),
    );
    const twice = [...counts].filter(([, c]) => c > 1).map(([n]) => n);
    const where = (n: number) => lines.filter((l) => l.record.n === n).map((l) => `${l.epoch}:${l.seq}`);
    assert.deepEqual(
      twice.slice(0, 10),
      [],
      `${twice.length} records at the centre twice, e.g. ${twice[0]} in ${twice.length > 0 ? where(twice[0]!).join(' and ') : ''}; centre had ${[...delivered].join(', ')} before; exported numbered ${numbered.join(', ')}; receiver: ${receiver.stderr().slice(-3000)}`,
    );
    assert.equal(lines.length, TOTAL);
  } finally {
    agent?.child.kill('SIGTERM');
    receiver.child.kill('SIGTERM');
    await agent?.exited;
    await receiver.exited;
    await broker.stop();
    ws.cleanup();
  }
});
