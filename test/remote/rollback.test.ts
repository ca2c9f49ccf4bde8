/**
 * Rollback on request and `fleet push --wait` to one device, on an agent running as a process with a real
 * Mosquitto: v1 and v2 pushed with the CLI (committed, exit 0), a signed `config.rollback` puts v1 back
 * (reported `rolled_back`, reason `operator`), a restart stays on v1 although v2 is still retained (ignored
 * quietly), v2 pushed again live is refused `replayed`, and a config whose sink cannot connect is rolled back
 * with its reason printed and exit code 1. Through all of it the agent keeps forwarding.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import {
  type AgentProcess,
  fleetAgentDir,
  makeOperator,
  type Operator,
  PREFIX,
  signedCommand,
  signedConfig,
  startAgentProcess,
  until,
  Watcher,
} from '../helpers/fleet.ts';

const DEVICE = 'gw-rollback';
const status = `${PREFIX}/${DEVICE}/status`;
const reportTopic = `${PREFIX}/${DEVICE}/config/report`;
const data = `edge-agent/v1/${DEVICE}/`;

let broker: Mosquitto;
let agent: AgentProcess;
let watch: Watcher;
let op: Operator;
let dir: string;
let configFile: string;

const genAt = (rate: number) => ({ sources: [{ name: 'gen', type: 'synthetic', rate, batch: 5 }] });

function cli(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['agent/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function push(version: number, config: Record<string, unknown>) {
  // A version pushed again is the same document (the same file), as an operator would push it.
  const file = join(dir, `v${version}.json`);
  if (!existsSync(file)) writeFileSync(file, JSON.stringify(signedConfig(op, { device: DEVICE }, version, config)));
  return cli(['fleet', 'push', '--broker', broker.url, '--prefix', PREFIX, '--target', `device:${DEVICE}`, '--wait', '--timeout', '90', file]);
}

/** A request with an MQTT 5 response address (under the watched prefix); resolves with every answer once a terminal one came. */
async function ask(payload: unknown): Promise<Record<string, unknown>[]> {
  const correlation = randomBytes(8);
  const responseTopic = `${PREFIX}/_op/${correlation.toString('hex')}`;
  await watch.client.publishAsync(`${PREFIX}/${DEVICE}/cmd`, JSON.stringify(payload), { qos: 1, properties: { responseTopic, correlationData: correlation } });
  const terminal = (r: Record<string, unknown>) => ['done', 'failed', 'refused', 'expired', 'interrupted'].includes(String(r.state));
  await until(() => watch.all(responseTopic, correlation).some(terminal), `an answer to ${JSON.stringify(payload).slice(0, 80)}`, 90_000, agent.stderr);
  return watch.all(responseTopic, correlation);
}

async function runningRate(): Promise<number> {
  const answers = await ask({ action: 'config.get' });
  const result = answers.at(-1)!.result as { config: { sources: { name: string; rate: number }[] } };
  return result.config.sources.find((s) => s.name === 'gen')!.rate;
}

async function stillForwarding(): Promise<void> {
  assert.equal(agent.child.exitCode, null, `the agent exited: ${agent.stderr()}`);
  const before = watch.count(data);
  await until(() => watch.count(data) > before, 'more batches from the agent', 30_000, agent.stderr);
}

async function startOnline(session: number): Promise<void> {
  agent = startAgentProcess(configFile);
  await until(() => watch.all(status).some((s) => s.online === true && s.session === session), `the birth of session ${session}`, 60_000, agent.stderr);
}

before(async () => {
  broker = await startMosquitto();
  op = makeOperator();
  ({ dir, config: configFile } = await fleetAgentDir(broker.url, DEVICE, op.root, { rate: 20 }));
  // The subscriber on the data topics is the centre: MQTT 5 acknowledges a batch nobody subscribes to as not delivered.
  watch = await Watcher.connect(broker.url, [`${PREFIX}/#`, `${data}#`]);
  await startOnline(1);
  await stillForwarding();
});

after(async () => {
  agent?.child.kill('SIGKILL');
  await agent?.exited;
  await watch?.close();
  await broker?.stop();
});

test('fleet push --wait to one device: committed, exit 0, a one-line summary', async () => {
  const v1 = await push(1, genAt(7));
  assert.equal(v1.code, 0, `${v1.stdout}\n${v1.stderr}`);
  assert.match(v1.stdout, /^config version 1: 1 device\(s\): 1 committed, 0 unchanged, 0 rolled back, 0 refused, 0 no answer$/m);
  assert.match(v1.stderr, new RegExp(`\\[1/1\\] ${DEVICE}: committed after \\d+\\.\\d s`));
  assert.equal(await runningRate(), 7);
  const v2 = await push(2, genAt(9));
  assert.equal(v2.code, 0, `${v2.stdout}\n${v2.stderr}`);
  assert.match(v2.stdout, /1 committed/);
  assert.equal(await runningRate(), 9);
  await stillForwarding();
});

test('a signed config.rollback puts v1 back: done, reported rolled_back (operator), and a restart stays on v1', async () => {
  const reportsBefore = watch.all(reportTopic).length;
  const asked = Date.now();
  const answers = await ask(signedCommand(op, DEVICE, 'config.rollback').envelope);
  process.stdout.write(`# config.rollback answered done after ${((Date.now() - asked) / 1000).toFixed(2)} s\n`);
  assert.deepEqual(
    answers.map((a) => a.state),
    ['accepted', 'done'],
    JSON.stringify(answers),
  );
  const result = answers[1]!.result as Record<string, unknown>;
  assert.deepEqual([result.layer, result.version, result.outcome, result.reason], ['device', 1, 'rolled_back', 'operator'], JSON.stringify(result));
  assert.match(String(result.effective), /\+d=1$/);
  await until(() => watch.all(reportTopic).length > reportsBefore, 'the rollback report', 30_000, agent.stderr);
  const published = watch.json(reportTopic)!;
  assert.deepEqual([published.outcome, published.reason, published.version], ['rolled_back', 'operator', 1], JSON.stringify(published));
  assert.equal(await runningRate(), 7);
  await stillForwarding();

  // A second rollback has nothing to go back to (one step only).
  const again = await ask(signedCommand(op, DEVICE, 'config.rollback').envelope);
  assert.equal(again.at(-1)!.state, 'failed', JSON.stringify(again));
  assert.match(String(again.at(-1)!.message), /nothing to roll back to/);

  // The restart: v2 is still retained on the config topic and comes again at the subscription.
  agent.child.kill('SIGTERM');
  assert.equal(await agent.exited, 0);
  const reportsAtRestart = watch.all(reportTopic).length;
  await startOnline(2);
  await until(
    () => watch.all(status).some((s) => s.session === 2 && String((s.config as { version?: string } | undefined)?.version).endsWith('+d=1')),
    'a birth on v1',
    30_000,
    agent.stderr,
  );
  assert.equal(await runningRate(), 7, 'still on v1 after the restart');
  await stillForwarding();
  assert.equal(watch.all(reportTopic).length, reportsAtRestart, 'the retained v2 is ignored quietly: no new report');
  assert.equal(watch.json(reportTopic)!.reason, 'operator');
  assert.doesNotMatch(agent.stderr(), /"reason":"replayed"/);

  // The same v2 pushed again live: refused, the operator must sign a newer version.
  const replay = await push(2, genAt(9));
  assert.equal(replay.code, 1, `${replay.stdout}\n${replay.stderr}`);
  assert.match(replay.stdout, new RegExp(`${DEVICE}: refused replayed: .*rolled back on request`));
  assert.equal(await runningRate(), 7);
});

test('fleet push --wait of a config whose sink cannot connect: rolled back, the reason printed, exit 1', async () => {
  const nowhere = `mqtt://127.0.0.1:${await freePort()}`;
  const bad = await push(3, { ...genAt(11), sink: { type: 'mqtt', url: nowhere }, fleet: { health_deadline: '3s' } });
  process.stdout.write(`# ${bad.stdout.trim().split('\n').join('\n# ')}\n`);
  assert.equal(bad.code, 1, `${bad.stdout}\n${bad.stderr}`);
  assert.match(bad.stdout, /^config version 3: 1 device\(s\): 0 committed, 0 unchanged, 1 rolled back, 0 refused, 0 no answer$/m);
  assert.match(bad.stdout, new RegExp(`^  ${DEVICE}: rolled_back health:sink: the sink is not connected \\(running [0-9a-f]{8}\\+d=1\\)$`, 'm'));
  assert.match(bad.stderr, new RegExp(`\\[1/1\\] ${DEVICE}: rolled_back \\(health:sink\\)`));
  assert.equal(await runningRate(), 7, 'back on v1');
  await stillForwarding();
  // The failed v3 stays retained on the config topic: a restart must not apply it (and roll it back) again.
  agent.child.kill('SIGTERM');
  assert.equal(await agent.exited, 0);
  const reportsAtRestart = watch.all(reportTopic).length;
  await startOnline(3);
  await until(
    () => watch.all(status).some((s) => s.session === 3 && String((s.config as { version?: string } | undefined)?.version).endsWith('+d=1')),
    'a birth on v1',
    30_000,
    agent.stderr,
  );
  assert.equal(await runningRate(), 7, 'still on v1 after the restart');
  assert.equal(watch.all(reportTopic).length, reportsAtRestart, 'the retained, rolled-back v3 is ignored quietly: no new report');
  assert.doesNotMatch(agent.stderr(), /new configuration applied/);
  // v4 fixes it: committed above the rolled-back v3.
  const good = await push(4, genAt(13));
  assert.equal(good.code, 0, `${good.stdout}\n${good.stderr}`);
  assert.equal(await runningRate(), 13);
});
