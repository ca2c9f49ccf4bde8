import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtExecutable } from '../helpers/executable.ts';

// The optional heavy libraries are separate scripts of the executable, evaluated at first use
// (scripts/build/bundle.ts, LAZY_SCRIPTS; agent/util/packed-script.ts): a static import of one of them from
// a module every start evaluates would silently put it back into every start. NODE_DEBUG=edge-agent-scripts
// makes the executable print each lazy script it evaluates.

const HEAD = `device:
  id: lazy-test-gw
data_dir: data
keys:
  device_private: keys/device.key
  centre_public: keys/centre.pub
  generate_if_missing: true
sink:
  type: mqtt
  url: mqtt://127.0.0.1:1
`;

let dir: string;
let bin: string;
const children: ChildProcess[] = [];

/** Starts `run` with `config`; resolves with its output up to "agent running" and, if asked, the first line matching `also`. */
function runUntilRunning(config: string, also?: RegExp): Promise<{ output: string; child: ChildProcess }> {
  const file = join(dir, `run-${children.length}.yaml`);
  writeFileSync(file, config);
  const child = spawn(bin, ['run', '--config', file], {
    cwd: dir,
    env: { ...process.env, NODE_DEBUG: 'edge-agent-scripts', EDGE_AGENT_NATIVE_CACHE: join(dir, 'native-cache') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((done, fail) => {
    let output = '';
    const onData = (d: Buffer): void => {
      output += d.toString();
      if (output.includes('"agent running"') && (also === undefined || also.test(output))) done({ output, child });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => fail(new Error(`run exited ${code} before "agent running":\n${output}`)));
  });
}

describe('lazy scripts of the executable', { skip: process.arch === 'x64' && process.platform === 'linux' ? false : 'the host is not linux-x64' }, () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'edge-agent-lazy-'));
    bin = builtExecutable('linux-x64');
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('a run with a synthetic source and the MQTT sink evaluates none of them', async () => {
    const { output, child } = await runUntilRunning(`${HEAD}sources:\n  - { type: synthetic, name: load, rate: 10 }\n`);
    child.kill('SIGKILL');
    assert.doesNotMatch(output, /EDGE-AGENT-SCRIPTS \d+: evaluating/, output);
  });

  it('a Pulsar sink over WebSocket probes its broker with no warning of Node in the log', async () => {
    // The probe takes Node's HTTP client on first use; as an `import()` it made Node print an
    // ExperimentalWarning (not a JSON line) into the agent's log. No broker on port 1: the probe fails and says so.
    const config = `${HEAD.slice(0, HEAD.indexOf('sink:'))}sink:\n  type: pulsar\n  url: ws://127.0.0.1:1\n  topic: edge\nsources:\n  - { type: synthetic, name: load, rate: 10 }\n`;
    const { output, child } = await runUntilRunning(config, /pulsar not reachable/);
    child.kill('SIGKILL');
    assert.doesNotMatch(output, /Warning|\(node:\d+\)/, output);
    const notJson = output.split('\n').filter((line) => line !== '' && !line.startsWith('{') && !line.startsWith('EDGE-AGENT-SCRIPTS'));
    assert.deepEqual(notJson, [], 'every line of the log is a JSON line');
  });

  it('the embedded broker evaluates the broker script at its start, and the sink delivers through it', async () => {
    const config = `${HEAD.replace('url: mqtt://127.0.0.1:1', 'url: embedded\n  protocol_version: 4')}broker: { embedded: true }
receiver:
  enabled: true
  private_key: keys/centre.key
  devices: [{ id: lazy-test-gw, public_keys: [keys/device.pub] }]
  output: records.jsonl
sources:
  - { type: synthetic, name: load, rate: 100, count: 20 }
`;
    const { output, child } = await runUntilRunning(config);
    assert.match(output, /EDGE-AGENT-SCRIPTS \d+: evaluating broker \(\d+ bytes\)/);
    assert.doesNotMatch(output, /evaluating (?!broker)/, output);
    const records = join(dir, 'records.jsonl');
    // The embedded broker speaks MQTT 3.1.1 (protocol_version 4). Counted, not paced: the deadline only ends a hang.
    let lines = 0;
    const deadline = Date.now() + 120_000;
    while (lines < 20 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      lines = existsSync(records) ? readFileSync(records, 'utf8').split('\n').filter(Boolean).length : 0;
      assert.equal(child.exitCode, null, `the agent is still running:\n${output}`);
    }
    assert.equal(lines, 20, 'every record reached the receiver through the embedded broker');
    child.kill('SIGKILL');
  });
});
