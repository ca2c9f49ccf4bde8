/**
 * Collecting does not wait for the uplink. A sink's connect resolves after its first attempt, which against a
 * broker that accepts the connection and never answers lasts the sink's connect_timeout (Kafka's: once per
 * retry). The sources start first, so a serial line or a device pushing to the gateway is read meanwhile.
 * Observed in a real `run` (source tree) whose Pulsar sink points at a TCP server that never answers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runUntilAgentRunning } from '../../scripts/lib/run-until-running.ts';
import { NODE, ROOT } from '../helpers/executable-paths.ts';

let dir: string;
let silent: Server;
const sockets = new Set<Socket>();

describe('a run whose sink does not answer', () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edge-agent-sources-first-'));
    // Accepts connections, reads nothing back: the sink's first attempt lasts its whole connect_timeout.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    writeFileSync(
      join(dir, 'run.yaml'),
      [
        'device: { id: sources-first-gw }',
        'data_dir: data',
        'keys: { device_private: keys/device.key, centre_public: keys/centre.pub, generate_if_missing: true }',
        'sources:',
        '  - { type: synthetic, name: load, rate: 10 }',
        'sink:',
        '  type: pulsar',
        `  url: ws://127.0.0.1:${port}`,
        '  topic: edge',
        '  connect_timeout: 3s',
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts its sources before the sink has had its first answer', async () => {
    const { stopped, output } = await runUntilAgentRunning([NODE, join(ROOT, 'agent/cli/main.ts'), 'run', '--config', 'run.yaml', '--log-format', 'json'], {
      cwd: dir,
      env: process.env,
      timeoutMs: 120_000,
    });
    assert.ok(stopped, `no "agent running": ${output.slice(-2000)}`);
    const started = output.indexOf('"source started"');
    const unanswered = output.indexOf('pulsar not reachable');
    assert.ok(unanswered >= 0, `the sink's first attempt did not end before "agent running": ${output.slice(-2000)}`);
    assert.ok(started >= 0 && started < unanswered, `the source started only after the sink's first attempt:\n${output.slice(-2000)}`);
  });
});
