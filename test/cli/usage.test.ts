import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';

// Help, suggestions and usage errors of the real CLI in a child process: what a person sees at a shell.
const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const COMMANDS = ['run', 'receive', 'check-config', 'keygen'];
const STACK_LINE = /^\s+at .+\(?.*:\d+:\d+\)?$/m;

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(NODE, ['agent/cli/main.ts', ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A usage error: exit 2, one line on stderr starting with `edge-agent: `, nothing on stdout, no stack. */
function assertUsageError(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^edge-agent: [^\n]+\n$/);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, STACK_LINE);
}

describe('edge-agent usage', () => {
  for (const command of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      it(`${command} ${flag} prints its usage on stdout and exits 0`, async () => {
        const r = await cli(command, flag);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^Usage: edge-agent ${command}`));
        assert.match(r.stdout, /--help/);
        assert.equal(r.stderr, '');
      });
    }
    it(`help ${command} prints the same as ${command} --help`, async () => {
      const [viaHelp, viaFlag] = await Promise.all([cli('help', command), cli(command, '--help')]);
      assert.equal(viaHelp.code, 0);
      assert.equal(viaHelp.stdout, viaFlag.stdout);
    });
  }

  it('run and receive document --config and --log-format', async () => {
    for (const command of ['run', 'receive']) {
      const r = await cli(command, '--help');
      assert.match(r.stdout, /-c, --config <FILE>/);
      assert.match(r.stdout, /--log-format <FORMAT>/);
    }
  });

  it('no command prints the help on stderr and exits 2', async () => {
    const r = await cli();
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    for (const command of COMMANDS) assert.match(r.stderr, new RegExp(`edge-agent ${command}`));
  });

  it('-v and --version print the version and exit 0', async () => {
    for (const flag of ['-v', '--version']) {
      const r = await cli(flag);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
    }
  });

  it('a mistyped command suggests the right one and exits 2', async () => {
    assertUsageError(await cli('rnu'), /unknown command "rnu" \(did you mean run\?\)/);
    assertUsageError(await cli('keygne', '--dir', 'x'), /did you mean keygen\?/);
    assertUsageError(await cli('check-confg', 'x.yaml'), /did you mean check-config\?/);
  });

  it('an unknown flag suggests the right one and exits 2', async () => {
    assertUsageError(await cli('run', '--confg', 'x.yaml'), /unknown option "--confg" \(did you mean --config\?\); see edge-agent run --help/);
    assertUsageError(await cli('receive', '--log-fromat', 'json', '--config', 'x.yaml'), /did you mean --log-format\?/);
    assertUsageError(await cli('keygen', '--nmae', 'centre'), /did you mean --name\?/);
    assertUsageError(await cli('--verison'), /did you mean --version\?/);
  });

  it('an unknown flag with nothing close says so without a suggestion', async () => {
    const r = await cli('run', '--frobnicate');
    assertUsageError(r, /unknown option "--frobnicate"; see edge-agent run --help/);
    assert.doesNotMatch(r.stderr, /did you mean/);
  });

  it('check-config without a file exits 2 with a one-line usage', async () => {
    assertUsageError(await cli('check-config'), /^edge-agent: missing required argument "FILE"; usage: edge-agent check-config FILE\n$/);
  });

  it('check-config with two files exits 2', async () => {
    assertUsageError(await cli('check-config', 'a.yaml', 'b.yaml'), /too many arguments.*usage: edge-agent check-config FILE/);
  });

  it('receive without --config exits 2 naming the option', async () => {
    assertUsageError(await cli('receive'), /required option "-c, --config <FILE>" not specified/);
  });

  it('--log-format takes only auto, text or json', async () => {
    assertUsageError(await cli('run', '--log-format', 'xml'), /"xml" is invalid\. Allowed choices are auto, text, json/);
  });
});
