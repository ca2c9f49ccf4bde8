/**
 * `edge-agent install` from the real executable, into temporary roots: --dry-run changes nothing; a real
 * install creates the service user in the serial group (useradd --prefix on the root's own /etc files), the
 * state directory and release layout owned by it, and a unit that `systemd-analyze verify` accepts (and,
 * to show the check can fail, one it refuses); the arm64 executable, under qemu-user, installs its own layout
 * (its ELF check runs as arm64 there).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseUnit } from '../../agent/update/unit.ts';
import { builtExecutable } from '../helpers/executable.ts';

let x64: string;
const dirs: string[] = [];
before(() => {
  x64 = builtExecutable('linux-x64');
});
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'edge-install-'));
  dirs.push(root);
  return root;
}

/** A root with its own /etc/passwd, group (with dialout) and shadow files, for useradd --prefix. */
function rootWithUsers(): string {
  const root = tempRoot();
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\ndialout:x:20:\n');
  writeFileSync(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o600 });
  writeFileSync(join(root, 'etc/gshadow'), 'root:*::\ndialout:*::\n', { mode: 0o600 });
  mkdirSync(join(root, 'etc/edge-agent'));
  writeFileSync(join(root, 'etc/edge-agent/config.yaml'), 'device:\n  id: gw\n');
  return root;
}

/** systemd-analyze verify of the installed unit under `root`; the root borrows the host's system units. */
function verify(root: string): { code: number | null; problems: string[] } {
  mkdirSync(join(root, 'usr/lib'), { recursive: true });
  if (!existsSync(join(root, 'usr/lib/systemd'))) symlinkSync('/usr/lib/systemd', join(root, 'usr/lib/systemd'));
  const units = ['edge-agent.service', 'edge-agent-trial.service', 'edge-agent-trial.timer'];
  const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...units], { encoding: 'utf8', cwd: root });
  // The borrowed units' symlinks do not resolve under the root; lines about our units are what counts.
  const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('edge-agent'));
  return { code: r.status, problems };
}

describe('edge-agent install', { concurrency: 2 }, () => {
  it('--dry-run prints every step and changes nothing', () => {
    const root = rootWithUsers();
    const before = readFileSync(join(root, 'etc/passwd'), 'utf8');
    const out = execFileSync(x64, ['install', '--dry-run', '--root', root], { encoding: 'utf8' });
    assert.match(out, /would install edge-agent/);
    assert.match(out, /useradd --prefix .* --groups dialout edge-agent/);
    assert.match(out, /write the units \/etc\/systemd\/system\/edge-agent.service, .*edge-agent-trial.timer/);
    assert.equal(readFileSync(join(root, 'etc/passwd'), 'utf8'), before);
    assert.equal(existsSync(join(root, 'var')), false);
  });

  it('creates the user in dialout, the layout owned by it, and a unit systemd-analyze verify accepts', () => {
    const root = rootWithUsers();
    execFileSync(x64, ['install', '--root', root, '--release', '1.0.0'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    const user = /^edge-agent:x:(\d+):(\d+):/m.exec(passwd);
    assert.ok(user, passwd);
    assert.match(readFileSync(join(root, 'etc/group'), 'utf8'), /^dialout:x:20:edge-agent$/m);
    const state = join(root, 'var/lib/edge-agent');
    assert.equal(statSync(state).uid, Number(user[1]));
    assert.equal(statSync(join(state, 'releases/1.0.0/edge-agent')).mode & 0o777, 0o755);
    assert.deepEqual(readdirSync(state).sort(), ['committed', 'current', 'native-cache', 'releases', 'staging', 'update-state.json']);

    assert.match(
      readFileSync(join(root, 'etc/systemd/system/edge-agent-trial.service'), 'utf8'),
      /ExecStart=\/var\/lib\/edge-agent\/committed\/edge-agent update expire/,
    );
    const unitPath = join(root, 'etc/systemd/system/edge-agent.service');
    const unit = parseUnit(readFileSync(unitPath, 'utf8')).get('Service')!;
    assert.deepEqual(unit.get('ExecStartPre'), ['/var/lib/edge-agent/committed/edge-agent update guard']);
    assert.match(unit.get('ExecStart')![0]!, /^\/var\/lib\/edge-agent\/current\/edge-agent run --config \/etc\/edge-agent\/config.yaml/);
    for (const [key, value] of [
      ['Type', 'notify'],
      ['NotifyAccess', 'all'],
      ['Restart', 'on-failure'],
      ['SupplementaryGroups', 'dialout'],
      ['User', 'edge-agent'],
      ['MemoryMax', '256M'],
    ] as const)
      assert.deepEqual(unit.get(key), [value], key);
    assert.ok(unit.get('Environment')!.includes('MALLOC_ARENA_MAX=1'));
    assert.ok(unit.get('Environment')!.includes('EDGE_AGENT_NATIVE_CACHE=/var/lib/edge-agent/native-cache'));
    assert.ok(unit.get('WatchdogSec'));

    const good = verify(root);
    assert.deepEqual({ code: good.code, problems: good.problems }, { code: 0, problems: [] });
    // The check can fail: a unit naming an executable that is not there is refused.
    writeFileSync(unitPath, readFileSync(unitPath, 'utf8').replace('/current/edge-agent run', '/missing/edge-agent run'));
    const bad = verify(root);
    assert.notEqual(bad.code, 0);
    assert.ok(
      bad.problems.some((l) => l.includes('/missing/edge-agent')),
      bad.problems.join('\n'),
    );
  });

  it('the arm64 executable under qemu-user installs its own layout', (t) => {
    const qemu = ['/usr/bin/qemu-aarch64', '/usr/bin/qemu-aarch64-static'].find(existsSync);
    const sysroot = process.env.QEMU_LD_PREFIX ?? (existsSync('/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1') ? '/usr/aarch64-linux-gnu' : undefined);
    if (!qemu || !sysroot) return t.skip('qemu-aarch64 or the aarch64 sysroot is missing (apt-get install qemu-user libc6-arm64-cross libstdc++6-arm64-cross)');
    const arm64 = builtExecutable('linux-arm64');
    const root = tempRoot();
    const exe = join(root, 'edge-agent-arm64');
    copyFileSync(arm64, exe);
    const r = spawnSync(
      qemu,
      [
        '-L',
        sysroot,
        exe,
        'install',
        '--root',
        '/',
        '--state-dir',
        join(root, 'state'),
        '--unit-dir',
        join(root, 'units'),
        '--no-create-user',
        '--user',
        'root',
      ],
      { encoding: 'utf8', env: { ...process.env, EDGE_AGENT_NATIVE_CACHE: join(root, 'native') } },
    );
    assert.equal(r.status, 0, r.stderr);
    const state = JSON.parse(readFileSync(join(root, 'state/update-state.json'), 'utf8')) as { committed: string; releases: Record<string, { arch: string }> };
    assert.equal(state.releases[state.committed]?.arch, 'arm64');
    // The ELF check ran as arm64 and passed; on this x64 host the same file is refused as wrong_arch.
    const header = readFileSync(join(root, 'state/current/edge-agent')).subarray(18, 20).readUInt16LE(0);
    assert.equal(header, 183);
  });
});
