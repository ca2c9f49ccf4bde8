/**
 * The http source in a real agent process, SIGKILLed at random while real HTTP clients (fetch) post at rate:
 * every request answered 202 reaches the real receiver, whole; no record of a request answered with an error
 * does. Requests cut off without an answer (the kill) may or may not have been committed: they are counted,
 * not judged. Some requests are bad on purpose (a broken line in the middle, a wrong token): all or nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { encode as encodeCbor } from 'cbor-x';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { startLoggingAgent } from '../helpers/agent-process.ts';
import { until } from '../helpers/processes.ts';

const KILLS = Number(process.env.EDGE_HTTP_SIGKILLS ?? 4);
const CLIENTS = 4;
const RECORDS_PER_REQUEST = 100;
const TOKEN = 'ingest-test-token-7f3a';

type Kind = 'json' | 'lines' | 'cbor' | 'bad_line' | 'bad_token';

function body(kind: Kind, rid: number): { body: string | Uint8Array; type: string } {
  const records = Array.from({ length: RECORDS_PER_REQUEST }, (_, i) => ({
    rid,
    i,
    sensor: `s-${(rid * 31 + i) % 97}`,
    value: Math.round(Math.random() * 100_000) / 1000,
    ts: Date.now(),
  }));
  if (kind === 'cbor') return { body: encodeCbor(records), type: 'application/cbor' };
  if (kind === 'json' || kind === 'bad_token') return { body: JSON.stringify(records), type: 'application/json' };
  const lines = records.map((r) => JSON.stringify(r));
  if (kind === 'bad_line') lines[RECORDS_PER_REQUEST / 2] = '{"rid":';
  return { body: `${lines.join('\n')}\n`, type: 'application/x-ndjson' };
}

function kindOf(rid: number): Kind {
  const k = rid % 20;
  return k === 3 ? 'bad_line' : k === 7 ? 'bad_token' : k === 11 ? 'cbor' : k === 15 ? 'lines' : 'json';
}

test(`http source: clients posting while the agent is SIGKILLed ${KILLS} times: every 202 delivered, no error delivered`, async () => {
  const ws = await workspace('edge-http-kill-');
  const broker = await startMosquitto();
  const port = await freePort();
  process.env.EDGE_TEST_INGEST_TOKEN = TOKEN;
  const loaded = writeConfig(
    ws.dir,
    agentYaml(broker.url, {
      sources: `  - { type: http, name: ingest, port: ${port}, token_env: EDGE_TEST_INGEST_TOKEN }`,
      extra: 'queue: { commit_interval: 20ms, full_policy: block }\nbatch: { max_records: 500 }',
    }).replace('level: warn', 'level: info'),
  );
  const output = new CollectingOutput();
  const receiver = await startReceiver(x25519, loaded, silentLogger, { output });
  const accepted = new Set<number>();
  const refused = new Map<number, number>();
  let notListening = 0;
  let cutOff = 0;
  let nextRid = 0;
  let posting = true;
  const client = async () => {
    while (posting) {
      const rid = nextRid++;
      const kind = kindOf(rid);
      const { body: payload, type } = body(kind, rid);
      const token = kind === 'bad_token' ? `${TOKEN}x` : TOKEN;
      try {
        const res = await fetch(`http://127.0.0.1:${port}/ingest/ingest`, {
          method: 'POST',
          headers: { 'content-type': type, authorization: `Bearer ${token}` },
          body: payload,
        });
        await res.arrayBuffer();
        if (res.status === 202) accepted.add(rid);
        else refused.set(rid, res.status);
      } catch (err) {
        // No answer, nothing to judge: the connection refused (agent down) or cut off by the kill.
        if ((err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED') notListening++;
        else cutOff++;
        await new Promise((r) => setTimeout(r, 20)); // pace retries while the agent is down
      }
    }
  };
  const clients = Array.from({ length: CLIENTS }, client);
  let alive: ChildProcess | undefined;
  try {
    for (let kill = 1; kill <= KILLS; kill++) {
      const agent = startLoggingAgent(loaded.path, ws.dir);
      alive = agent.child;
      const ended = agent.exited.then((how) => {
        throw new Error(`agent exited on its own (${String(how)}) in round ${kill}: ${JSON.stringify(agent.lines().slice(-5))}`);
      });
      ended.catch(() => {});
      const want = accepted.size + 10 + Math.floor(Math.random() * 30);
      try {
        await Promise.race([
          (async () => {
            const deadline = Date.now() + 60_000;
            while (accepted.size < want) {
              if (Date.now() > deadline) throw new Error(`only ${accepted.size} requests accepted, waiting for ${want}`);
              await new Promise((r) => setTimeout(r, 10)); // polls the clients' own count; not a synchronisation with the agent
            }
          })(),
          ended,
        ]);
      } finally {
        agent.child.kill('SIGKILL');
      }
      assert.equal(await agent.exited, 'SIGKILL');
    }
    posting = false;
    const last = startLoggingAgent(loaded.path, ws.dir);
    alive = last.child;
    await Promise.all(clients);
    const wantRecords = accepted.size * RECORDS_PER_REQUEST;
    const delivered = () => output.records.filter((r) => accepted.has(r.record.rid as number)).length;
    await output.waitFor(() => delivered() >= wantRecords, `the ${wantRecords} records of ${accepted.size} accepted requests`, 60_000);
    // A SIGTERM before the agent installed its handlers is no clean stop: wait until it says it runs.
    await until(() => last.lines().some((l) => l.msg === 'agent running'), 'the last agent to be running');
    last.child.kill('SIGTERM');
    assert.equal(await last.exited, 0);

    const byRequest = new Map<number, Set<number>>();
    let duplicates = 0;
    for (const { record } of output.records) {
      const rid = record.rid as number;
      const seen = byRequest.get(rid) ?? new Set<number>();
      if (seen.has(record.i as number)) duplicates++;
      seen.add(record.i as number);
      byRequest.set(rid, seen);
    }
    const incomplete = [...accepted].filter((rid) => byRequest.get(rid)?.size !== RECORDS_PER_REQUEST);
    assert.deepEqual(incomplete, [], 'every record of every 202-answered request delivered');
    const leaked = [...refused.keys()].filter((rid) => byRequest.has(rid));
    assert.deepEqual(leaked, [], 'nothing of a request answered with an error delivered');
    assert.equal(duplicates, 0, 'no record twice');
    const partial = [...byRequest].filter(([, s]) => s.size !== RECORDS_PER_REQUEST).map(([rid]) => rid);
    assert.deepEqual(partial, [], 'a request is delivered whole or not at all');
    const statuses = [...refused.values()].reduce<Record<number, number>>((a, s) => ((a[s] = (a[s] ?? 0) + 1), a), {});
    process.stdout.write(
      `# ${KILLS} SIGKILLs: ${accepted.size} requests answered 202 (all delivered), refused ${JSON.stringify(statuses)} (none delivered); without answer: ${cutOff} cut off by the kills, ${notListening} refused connections while down\n`,
    );
    assert.ok((statuses[400] ?? 0) > 0 && (statuses[401] ?? 0) > 0, 'bad requests were refused');
  } finally {
    if (alive?.exitCode === null && alive.signalCode === null) alive.kill('SIGKILL');
    posting = false;
    await Promise.allSettled(clients);
    delete process.env.EDGE_TEST_INGEST_TOKEN;
    await receiver.close();
    await broker.stop();
    ws.cleanup();
  }
});
