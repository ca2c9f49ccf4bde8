import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { builtExecutable } from '../helpers/executable.ts';

// The executable's embedded broker is a lazy script (aedes with its own copy of mqtt-packet). Unless that copy
// is set up before aedes (agent/broker/packet-writer.ts, evaluated first by the script), the first packet the
// broker writes builds mqtt-packet's cache of 65,536 Buffers (≈7 MiB of heap, for the life of the process).
// The built script, evaluated alone by plain node: a client subscribes and gets messages through it; the heap
// after a full collection must not have grown by the cache.

const CHILD = String.raw`
const net = require('node:net');
const { Aedes } = require(process.argv[1]).aedes;
(async () => {
  const broker = await Aedes.createBroker();
  const server = net.createServer((s) => broker.handle(s));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  global.gc();
  const before = process.memoryUsage().heapUsed;
  const socket = net.connect(server.address().port, '127.0.0.1');
  // CONNECT (MQTT 3.1.1, client id "t"), SUBSCRIBE "a" QoS 0, PUBLISH "a" QoS 0 with a few lengths.
  socket.write(Buffer.from([0x10, 13, 0, 4, 77, 81, 84, 84, 4, 2, 0, 60, 0, 1, 116]));
  socket.write(Buffer.from([0x82, 6, 0, 1, 0, 1, 97, 0]));
  let got = 0;
  socket.on('data', (d) => { got += d.length; });
  for (let n = 1; n <= 20; n++) socket.write(Buffer.concat([Buffer.from([0x30, 3 + n, 0, 1, 97]), Buffer.alloc(n, 120)]));
  while (got < 4 + 5 + 20 * 5 + 210) await new Promise((r) => setTimeout(r, 10));
  socket.destroy();
  global.gc();
  const grown = process.memoryUsage().heapUsed - before;
  process.stdout.write(JSON.stringify({ got, grown }));
  server.close();
  broker.close();
})();
`;

describe('the executable’s embedded broker script', {
  skip: process.arch === 'x64' && process.platform === 'linux' ? false : 'the host is not linux-x64',
}, () => {
  it('writes packets without building mqtt-packet’s number cache', () => {
    const exe = builtExecutable('linux-x64');
    const script = join(exe, '..', 'bundle', 'lazy', 'broker.cjs');
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', CHILD, script], { encoding: 'utf8', timeout: 60_000 })) as {
      got: number;
      grown: number;
    };
    // CONNACK 4 + SUBACK 5 + 20 publishes of 5 + n bytes: every packet went through the broker's writer.
    assert.equal(out.got, 4 + 5 + 20 * 5 + 210);
    assert.ok(out.grown < 3 * 1024 * 1024, `heap grew by ${(out.grown / 1048576).toFixed(1)} MiB`);
  });
});
