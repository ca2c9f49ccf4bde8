/**
 * No configured secret leaves through the endpoint or the commands: passwords in the sink's and the
 * source's URLs, the device's private key, and secrets inside the records themselves (a field named
 * password, a URL with a password, a configured password in free text). The page, /metrics, /api/status,
 * `edge-agent status` (text and --json) and `edge-agent tap` (real child processes of the CLI) are grepped
 * for each: no hit. The tap is also shown to carry the records, redacted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { configuredSecrets } from '../../agent/observe/redact.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { startObservedAgent } from '../helpers/observe.ts';

const SINK_PASSWORD = 'Sink-Pa55word-91';
const SOURCE_PASSWORD = 'Source-Pa55word-42';
const FIELD_SECRET = 'Field-Secret-77';
const URL_SECRET = 'Url-Secret-55';

function cli(args: string[], onStderr?: (text: string) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['agent/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => {
    stderr += d;
    onStderr?.(stderr);
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

test('the page, /metrics, status and tap carry no configured secret', async () => {
  const ws = await workspace();
  const broker = await startMosquitto();
  const port = broker.port;
  const loaded = writeConfig(
    ws.dir,
    agentYaml(`mqtt://gw:${SINK_PASSWORD}@127.0.0.1:${port}`, {
      sources: `  - { type: mqtt, name: devs, url: "mqtt://src:${SOURCE_PASSWORD}@127.0.0.1:${port}", topics: [{ filter: "in/#", qos: 1 }], payload: json }`,
      extra: 'http: { enabled: true, listen: "127.0.0.1:0", history_interval: 1s }\n',
    }),
  );
  const deviceKey = readFileSync(join(ws.dir, 'keys', 'device.key'), 'utf8')
    .trim()
    .split(/\s+/)
    .at(-1)!;
  const secrets = [...new Set([...configuredSecrets(loaded.config, loaded.baseDir), SINK_PASSWORD, SOURCE_PASSWORD, deviceKey, FIELD_SECRET, URL_SECRET])];
  assert.ok(configuredSecrets(loaded.config, loaded.baseDir).includes(deviceKey), 'the key material is among the configured secrets');
  const receiver = await startReceiver(x25519, loaded, silentLogger, { output: new CollectingOutput() });
  const o = await startObservedAgent(loaded);
  const publisher = await mqtt.connectAsync(broker.url);
  let n = 0;
  const publish = () =>
    publisher.publishAsync(
      `in/${n % 3}`,
      JSON.stringify({ n: n++, note: `the broker password is ${SOURCE_PASSWORD}`, password: FIELD_SECRET, link: `https://op:${URL_SECRET}@example.net/x` }),
      { qos: 1 },
    );
  try {
    for (let i = 0; i < 20; i++) await publish();
    // The tap, a real CLI process: it prints 5 records, published while it listens.
    let listening: () => void;
    const tapReady = new Promise<void>((resolve) => (listening = resolve));
    const tapDone = cli(['tap', 'devs', '--config', loaded.path, '--count', '5'], (err) => /tapping devs/.test(err) && listening());
    await tapReady;
    let tapEnded = false;
    void tapDone.then(() => (tapEnded = true));
    const deadline = Date.now() + 60_000;
    while (!tapEnded) {
      assert.ok(Date.now() < deadline, 'the tap printed 5 records within a minute of records flowing');
      await publish();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const tapped = await tapDone;
    assert.equal(tapped.code, 0, tapped.stderr);
    const lines = tapped.stdout.trim().split('\n');
    assert.equal(lines.length, 5, tapped.stdout);
    for (const line of lines) {
      const record = JSON.parse(line) as Record<string, unknown>;
      assert.equal(typeof record.n, 'number', 'the records themselves are shown');
      assert.equal(record.password, '[redacted]');
      assert.match(String(record.note), /\[redacted\]/);
    }
    const outputs: Record<string, string> = {
      page: await o.text('/'),
      metrics: await o.text('/metrics'),
      'api/status': await o.text('/api/status'),
      'api/history': await o.text('/api/history'),
      tap: tapped.stdout + tapped.stderr,
    };
    for (const args of [['status'], ['status', '--json']]) {
      const r = await cli([...args, '--config', loaded.path]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /READY|"ready"/);
      outputs[args.join(' ')] = r.stdout + r.stderr;
    }
    for (const [where, text] of Object.entries(outputs)) {
      for (const secret of secrets) assert.ok(!text.includes(secret), `${where} shows the secret ${secret}`);
    }
    // The token is for the operator only: `status --token` prints it, and nothing else does.
    const token = (await cli(['status', '--token', '--config', loaded.path])).stdout.trim();
    assert.ok(token.length >= 40);
    for (const [where, text] of Object.entries(outputs)) assert.ok(!text.includes(token), `${where} shows the token`);
  } finally {
    await publisher.endAsync();
    await o.stop();
    await receiver.close();
    await broker.stop();
    ws.cleanup();
  }
});
