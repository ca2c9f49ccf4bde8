/**
 * The fleet control connection over TLS, against real Mosquitto TLS listeners: with `fleet.broker.tls.ca`
 * (a path relative to the config file) the agent connects and publishes its status, which the operator's
 * `fleet list --ca` reads over TLS too; a broker whose certificate (from the same CA) names another host is
 * refused, and the agent says it is a TLS verification failure, not an unreachable broker.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { makeCertificates } from '../helpers/certs.ts';
import { fleetAgentDir, makeOperator, PREFIX, startAgentProcess, until } from '../helpers/fleet.ts';

let pki: string;
let certs: ReturnType<typeof makeCertificates>;
let plain: Mosquitto;
before(async () => {
  pki = mkdtempSync(join(tmpdir(), 'edge-fleet-tls-'));
  certs = makeCertificates(pki);
  // The sink's broker: the control connection is the one under test.
  plain = await startMosquitto();
});
after(async () => {
  await plain?.stop();
  rmSync(pki, { recursive: true, force: true });
});

/** An agent dir whose control connection goes to `url` with the CA copied beside its config (`certs/ca.crt`). */
async function tlsAgent(device: string, url: string, tls: string) {
  const op = makeOperator();
  const made = await fleetAgentDir(plain.url, device, op.root);
  cpSync(certs.ca, join(made.dir, 'certs', 'ca.crt'));
  const text = readFileSync(made.config, 'utf8');
  const line = `  broker: { url: ${plain.url}, protocol_version: 5 }`;
  assert.ok(text.includes(line), text);
  writeFileSync(made.config, text.replace(line, `  broker: { url: ${url}, protocol_version: 5, tls: ${tls} }`));
  return made;
}

function fleetList(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['agent/cli/main.ts', 'fleet', 'list', '--prefix', PREFIX, '--json', ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

test('with fleet.broker.tls.ca the control connection verifies the broker and publishes its status over TLS', async () => {
  const broker = await startMosquitto({ extra: [`certfile ${certs.serverCert}`, `keyfile ${certs.serverKey}`] });
  const url = `mqtts://localhost:${broker.port}`;
  const { dir, config } = await tlsAgent('gw-tls-ok', url, '{ ca: certs/ca.crt }');
  const agent = startAgentProcess(config);
  try {
    // The operator's side over TLS too: its own --ca.
    let listed: { code: number; stdout: string; stderr: string } | undefined;
    const deadline = Date.now() + 60_000;
    for (;;) {
      listed = await fleetList('--broker', url, '--ca', certs.ca);
      if (listed.code === 0 && listed.stdout.split('\n').some((l) => l.includes('"gw-tls-ok"') && /"online":true/.test(l))) break;
      assert.ok(Date.now() < deadline, `no online status over TLS: ${listed.stdout}${listed.stderr}${agent.stderr()}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.match(agent.stderr(), /fleet control connection up/);
    // Without --ca the operator's client trusts only the system CAs: refused, said as a TLS failure.
    const refused = await fleetList('--broker', url);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /TLS verification failed: the certificate is not signed by a trusted CA/);
  } finally {
    agent.child.kill('SIGTERM');
    await agent.exited;
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a broker certificate for another host name is refused by default, with a TLS error said as such', async () => {
  const elsewhere = makeCertificates(join(pki, 'elsewhere'), 'DNS:elsewhere.test');
  const broker = await startMosquitto({ extra: [`certfile ${elsewhere.serverCert}`, `keyfile ${elsewhere.serverKey}`] });
  // Its CA, so the name is the only fault.
  const { dir, config } = await tlsAgent('gw-tls-name', `mqtts://127.0.0.1:${broker.port}`, '{ ca: certs/ca.crt }');
  cpSync(elsewhere.ca, join(dir, 'certs', 'ca.crt'));
  const agent = startAgentProcess(config);
  try {
    await until(
      () => /fleet control connection: TLS verification failed: the certificate does not name the host connected to/.test(agent.stderr()),
      'the TLS refusal in the log',
      60_000,
      agent.stderr,
    );
    assert.doesNotMatch(agent.stderr(), /fleet control connection up/);
    assert.equal(agent.child.exitCode, null, 'the agent keeps running (and forwarding) without its control connection');
    // The operator's client verifies names too, and --servername is the way to name the one the certificate carries.
    const refused = await fleetList('--broker', `mqtts://127.0.0.1:${broker.port}`, '--ca', elsewhere.ca);
    assert.match(refused.stderr, /TLS verification failed: the certificate does not name the host connected to/);
    const named = await fleetList('--broker', `mqtts://127.0.0.1:${broker.port}`, '--ca', elsewhere.ca, '--servername', 'elsewhere.test');
    assert.equal(named.code, 0, named.stderr);
  } finally {
    agent.child.kill('SIGTERM');
    await agent.exited;
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
