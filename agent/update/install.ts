/**
 * What `edge-agent install` does, as a list of steps printed before they run (`--dry-run` prints only):
 * the service user (unprivileged, in the serial group), the state directory, the release layout seeded with
 * the running executable as the committed release, and the systemd unit. `root` prefixes every path written
 * (tests install into a temporary directory); the unit names the paths as they are on the device.
 */
import { chownSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { makeDirs } from '../util/make-dirs.ts';
import { ReleaseStore } from './releases.ts';

// Loaded by the install only: every start evaluates this module (the command line lists `install`).
const childProcess = () => process.getBuiltinModule('node:child_process');
import { TRIAL_TIMER, trialTimerUnits, UNIT_NAME, type UnitOptions, unitText } from './unit.ts';

export interface InstallOptions extends UnitOptions {
  root: string;
  unitDir: string;
  /** The executable to install (the running one). */
  executable: string;
  version: string;
  /** Create the user (useradd) when missing; off for a layout without /etc/passwd. */
  createUser: boolean;
}

export interface InstallStep {
  what: string;
  run(): void;
}

export function installSteps(o: InstallOptions): InstallStep[] {
  const at = (path: string) => (o.root === '/' ? path : join(o.root, path));
  const steps: InstallStep[] = [];
  if (o.createUser) {
    const args = ['--system', '--no-create-home', '--home-dir', o.stateDir, '--shell', '/usr/sbin/nologin', '--user-group', '--groups', o.serialGroup];
    const prefix = o.root === '/' ? [] : ['--prefix', o.root];
    steps.push({
      what: `create the system user ${o.user} (member of ${o.serialGroup}) unless it exists: useradd ${[...prefix, ...args, o.user].join(' ')}`,
      run: () => {
        if (userId(at('/etc/passwd'), o.user) === undefined)
          childProcess().execFileSync('useradd', [...prefix, ...args, o.user], { stdio: ['ignore', 'ignore', 'pipe'] });
      },
    });
  }
  steps.push({
    what: `create the state directory ${o.stateDir} (0750, owned by ${o.user}) and ${o.nativeCache} for the native addons`,
    run: () => {
      makeDirs(at(o.stateDir), 0o750);
      makeDirs(at(o.nativeCache), 0o700);
      const uid = userId(at('/etc/passwd'), o.user);
      if (uid !== undefined) for (const dir of [o.stateDir, o.nativeCache]) chownSync(at(dir), uid.uid, uid.gid);
    },
  });
  steps.push({
    what: `copy ${o.executable} to ${o.stateDir}/releases/${o.version}/edge-agent (0755) and point current and committed at it`,
    run: () => {
      const store = new ReleaseStore(at(o.stateDir));
      store.adopt(o.version, o.executable);
      const uid = userId(at('/etc/passwd'), o.user);
      if (uid !== undefined) chownTree(at(o.stateDir), uid.uid, uid.gid);
    },
  });
  const units = { [UNIT_NAME]: unitText(o), ...trialTimerUnits(o) };
  steps.push({
    what: `write the units ${Object.keys(units)
      .map((name) => join(o.unitDir, name))
      .join(', ')}`,
    run: () => {
      makeDirs(at(o.unitDir), 0o755);
      for (const [name, text] of Object.entries(units)) writeFileAtomic(at(join(o.unitDir, name)), text, 0o644);
    },
  });
  if (!existsSync(at(o.configPath))) steps.push({ what: `note: ${o.configPath} does not exist yet; write it before starting the unit`, run: () => {} });
  steps.push({ what: `then: systemctl daemon-reload && systemctl enable --now ${UNIT_NAME} ${TRIAL_TIMER}`, run: () => {} });
  return steps;
}

function userId(passwd: string, user: string): { uid: number; gid: number } | undefined {
  let text: string;
  try {
    text = readFileSync(passwd, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === user && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

function chownTree(dir: string, uid: number, gid: number): void {
  childProcess().execFileSync('chown', ['-R', '--no-dereference', `${uid}:${gid}`, dir]);
}
