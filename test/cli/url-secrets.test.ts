import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger, redactUrlPasswords } from '../../agent/log.ts';

// A password written into a URL (`mqtt://user:pass@host`) never reaches the log, whichever way the URL is
// logged; check-config says where such a URL sits and where the password belongs.
const ROOT = resolve(import.meta.dirname, '../..');

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-agent-urlsecret-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function logLines(format: 'json' | 'text'): string {
  const out = join(dir, `${format}.log`);
  const log = createLogger('info', { format, destination: out }).child({ component: 'sink', type: 'mqtt' });
  log.info({ url: 'mqtt://gw:s3cret@broker.example:1883' }, 'mqtt connected');
  log.warn('cannot reach postgres://reader:pa55word@db.example:5432/plant; retrying');
  log.error({ err: new Error('connect failed for mqtts://gw:s3cret@broker.example:8883/x') }, 'mqtt error');
  log.info({ url: 'mqtt://gw@broker.example:1883', other: 'a:b@c' }, 'no password here');
  return readFileSync(out, 'utf8');
}

describe('passwords in URLs', () => {
  for (const format of ['json', 'text'] as const) {
    it(`are redacted in ${format} log lines: fields, messages and error texts`, () => {
      const text = logLines(format);
      assert.doesNotMatch(text, /s3cret|pa55word/);
      assert.match(text, /mqtt:\/\/gw:\[redacted\]@broker\.example:1883/);
      assert.match(text, /postgres:\/\/reader:\[redacted\]@db\.example:5432\/plant/);
      assert.match(text, /mqtts:\/\/gw:\[redacted\]@broker\.example:8883\/x/);
      assert.match(text, /mqtt:\/\/gw@broker\.example:1883/, 'a user name alone stays');
      assert.match(text, /a:b@c/, 'text that is not a URL stays');
    });
  }

  it('redactUrlPasswords leaves text without a URL password as it is', () => {
    assert.equal(redactUrlPasswords('mqtt://host:1883 and user@example'), 'mqtt://host:1883 and user@example');
    assert.equal(redactUrlPasswords('"url":"mqtt://u:p@h"'), '"url":"mqtt://u:[redacted]@h"');
  });

  it('check-config warns about a password in a URL, naming the setting, and still passes', async () => {
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, 'device:\n  id: gw-01\nsources:\n  - type: synthetic\n    name: load\nsink:\n  type: mqtt\n  url: mqtt://gw:s3cret@127.0.0.1:1\n');
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
      execFile(process.execPath, ['agent/cli/main.ts', 'check-config', '--schema-only', file], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) =>
        done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: .*sink\.url: the URL carries a password; move it to password_file or password_env/);
    assert.doesNotMatch(r.stderr, /s3cret/, 'the warning does not repeat the password');
  });
});
