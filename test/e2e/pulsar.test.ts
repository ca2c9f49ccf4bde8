import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startPulsar, type PulsarBroker } from '../../scripts/lib/pulsar.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { startAgent, type RunningAgent } from '../../agent/runtime/agent.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';

// One real broker for the whole file, with token authentication on (a start costs ~8 s and ~450 MB).
let broker: PulsarBroker;
let secretDir: string;
const secret = randomBytes(32);

function jwt(subject: string, key: Buffer = secret): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256' })}.${part({ sub: subject })}`;
  return `${unsigned}.${createHmac('sha256', key).update(unsigned).digest('base64url')}`;
}
const ADMIN = jwt('admin');

before(async () => {
  secretDir = mkdtempSync(join(tmpdir(), 'edge-pulsar-secret-'));
  writeFileSync(join(secretDir, 'secret.key'), secret);
  broker = await startPulsar({ auth: { secretKeyFile: join(secretDir, 'secret.key'), adminToken: ADMIN } });
});
after(async () => {
  await broker?.close();
  rmSync(secretDir, { recursive: true, force: true });
});

interface SinkParts {
  url?: string;
  namespace?: string;
  tokenEnv?: string;
}

/** Agent + receiver over Pulsar; each test uses its own topic and subscription so they do not meet. */
function pulsarYaml(name: string, total: number, rate: number, sink: SinkParts = {}): string {
  const pulsar = (parts: SinkParts) => `
    type: pulsar
    url: ${parts.url ?? broker.wsUrl}
    namespace: ${parts.namespace ?? 'default'}
    topic: ${name}-topic
    token_env: ${parts.tokenEnv ?? 'PULSAR_TEST_ADMIN_TOKEN'}
    subscription: ${name}-receiver
    reconnect: { initial_delay: 50ms, max_delay: 500ms }`;
  return agentYaml(
    { sink: pulsar(sink), input: pulsar({ ...sink, url: broker.wsUrl, tokenEnv: 'PULSAR_TEST_ADMIN_TOKEN' }) },
    { device: `gw-${name}`, sources: `  - { type: synthetic, name: gen, rate: ${rate}, batch: 200, count: ${total} }`, writeTimeout: '10s' },
  );
}
process.env.PULSAR_TEST_ADMIN_TOKEN = ADMIN;
process.env.PULSAR_TEST_WRONG_TOKEN = jwt('admin', randomBytes(32));

function assertExactlyOnce(output: CollectingOutput, total: number): void {
  const numbers = output.numbers();
  assert.equal(numbers.length, total, 'no record twice in the output');
  assert.deepEqual(
    [...numbers].sort((a, b) => a - b),
    Array.from({ length: total }, (_, i) => i + 1),
  );
}

/** A logger that keeps its lines, to check that a failure is reported with its reason. */
function capturingLogger(): { log: typeof silentLogger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: pino({ level: 'warn' }, stream) as unknown as typeof silentLogger, lines };
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('synthetic source → agent → Pulsar (SIGKILLed and restarted mid-stream) → receiver: every record exactly once', async () => {
  const TOTAL = 20_000;
  const ws = await workspace();
  const loaded = writeConfig(ws.dir, pulsarYaml('kill', TOTAL, 4_000));
  const output = new CollectingOutput();
  const receiver = await startReceiver(x25519, loaded, silentLogger, { output });
  const agent = await startAgent(loaded, silentLogger);
  try {
    await output.waitFor(() => output.records.length >= TOTAL / 5, 'a fifth of the stream');
    await broker.kill();
    const acknowledgedBeforeKill = output.records.length;
    assert.ok(acknowledgedBeforeKill < TOTAL, 'the broker died mid-stream');
    await broker.restart();
    await output.waitFor(() => output.records.length >= TOTAL, 'every record', 120_000);
    await agent.sender.idle();
    await agent.queue.flush();
    assertExactlyOnce(output, TOTAL);
    assert.equal(agent.status().queue.records, 0, 'the queue drained');
    assert.equal(agent.status().sender.rejected, 0, 'nothing set aside');
  } finally {
    await agent.stop();
    await receiver.close();
    ws.cleanup();
  }
});

/**
 * A sink that cannot deliver (for `reason`) keeps everything queued and says why; once its config is
 * fixed, an agent started on the same data delivers it all, once.
 */
async function queuedUntilFixed(name: string, bad: SinkParts, reason: RegExp, fix?: () => Promise<void>, unreachable = false): Promise<void> {
  const TOTAL = 1_000;
  const ws = await workspace();
  const captured = capturingLogger();
  let agent: RunningAgent | undefined;
  const output = new CollectingOutput();
  const good = writeConfig(ws.dir, pulsarYaml(name, TOTAL, 0, { namespace: bad.namespace }), 'good.yaml');
  const receiverConfig = writeConfig(ws.dir, pulsarYaml(name, TOTAL, 0, {}), 'receiver.yaml');
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
  try {
    agent = await startAgent(writeConfig(ws.dir, pulsarYaml(name, TOTAL, 0, bad), 'bad.yaml'), captured.log);
    await waitUntil(() => captured.lines.some((line) => reason.test(line)), `a log line matching ${reason}`);
    // A refusing broker fails each write (retried with backoff); an unreachable one is not written to at all.
    if (unreachable) await waitUntil(() => agent!.status().queue.records === TOTAL, 'every record queued');
    else await waitUntil(() => agent!.status().sender.retries >= 3, 'several retries');
    const status = agent.status();
    assert.ok(status.queue.records > 0, 'the records stay queued');
    assert.equal(status.sender.rejected, 0, 'nothing set aside');
    assert.equal(status.sender.batchesSent, 0);
    await agent.stop();
    agent = undefined;

    await fix?.();
    receiver = await startReceiver(x25519, bad.namespace ? good : receiverConfig, silentLogger, { output });
    agent = await startAgent(bad.namespace ? good : receiverConfig, silentLogger);
    await output.waitFor(() => output.records.length >= TOTAL, 'every record after the fix', 60_000);
    await agent.sender.idle();
    await agent.queue.flush();
    assertExactlyOnce(output, TOTAL);
    assert.equal(agent.status().queue.records, 0);
  } finally {
    await agent?.stop();
    await receiver?.close();
    ws.cleanup();
  }
}

test("a namespace that does not exist: logged with the broker's reason, data stays queued, delivered once it exists", async () => {
  await queuedUntilFixed('nons', { namespace: 'no-such-ns' }, /HTTP 404.*Namespace not found/, async () => {
    const created = await broker.admin('PUT', '/admin/v2/namespaces/public/no-such-ns');
    assert.equal(created.status, 204, created.text);
  });
});

test('a wrong token: logged as an authentication failure, data stays queued, delivered with the right token', async () => {
  await queuedUntilFixed('badtoken', { tokenEnv: 'PULSAR_TEST_WRONG_TOKEN' }, /HTTP 401 authentication refused/);
});

test('an unreachable broker: logged, data stays queued, delivered once the sink points at the broker', async () => {
  await queuedUntilFixed('unreachable', { url: `ws://127.0.0.1:${await freePort()}` }, /pulsar not reachable; probing/, undefined, true);
});
