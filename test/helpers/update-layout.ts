/**
 * A release layout installed by the real executable (`edge-agent install`) into a temporary directory, for
 * the self-update tests: the unit names temporary paths, so the stand-in for systemd
 * (test/helpers/unit-supervisor.ts) can run it as written. Configs for a healthy agent (embedded broker and
 * receiver), one whose sink cannot reach its broker, and one whose canary is never acknowledged.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReleaseStore } from '../../agent/update/releases.ts';
import { builtExecutable } from './executable.ts';

export interface Layout {
  dir: string;
  stateDir: string;
  unitPath: string;
  configPath: string;
  logPath: string;
  executable: string;
  store: ReleaseStore;
}

export interface UnitTimes {
  watchdogSec?: number;
  startTimeoutSec?: number;
  restartSec?: number;
}

export function installLayout(dir: string, times: UnitTimes = {}): Layout {
  const executable = builtExecutable('linux-x64');
  const stateDir = join(dir, 'state');
  const configPath = join(dir, 'config.yaml');
  writeConfig(configPath, 'good');
  execFileSync(
    executable,
    [
      'install',
      '--root',
      '/',
      '--state-dir',
      stateDir,
      '--unit-dir',
      join(dir, 'units'),
      '--config',
      configPath,
      '--no-create-user',
      '--user',
      'root',
      '--release',
      '1.0.0',
      '--watchdog-sec',
      String(times.watchdogSec ?? 10),
      '--start-timeout-sec',
      String(times.startTimeoutSec ?? 90),
      '--restart-sec',
      String(times.restartSec ?? 1),
    ],
    { env: { ...process.env, EDGE_AGENT_NATIVE_CACHE: join(dir, 'native') }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return {
    dir,
    stateDir,
    unitPath: join(dir, 'units', 'edge-agent.service'),
    configPath,
    logPath: join(dir, 'unit.log'),
    executable,
    store: new ReleaseStore(stateDir),
  };
}

export type ConfigKind = 'good' | 'no-broker' | 'no-canary';

/**
 * good: synthetic source → embedded broker → receiver in the same process (acknowledged by the centre).
 * no-broker: the sink's broker is a port nothing listens on. no-canary: the sink reaches `brokerUrl` (a
 * real Mosquitto) but waits for the centre's acknowledgement, and no receiver runs.
 */
export function writeConfig(path: string, kind: ConfigKind, brokerUrl = ''): void {
  const sink =
    kind === 'good'
      ? 'sink:\n  type: mqtt\n  url: embedded\n  protocol_version: 4\n  acknowledged_by: centre\nbroker:\n  embedded: true\n'
      : kind === 'no-broker'
        ? 'sink:\n  type: mqtt\n  url: mqtt://127.0.0.1:9\n'
        : `sink:\n  type: mqtt\n  url: ${brokerUrl}\n  acknowledged_by: centre\n`;
  const receiver =
    kind === 'good'
      ? 'receiver:\n  enabled: true\n  private_key: keys/centre.key\n  devices:\n    - id: update-gw\n      public_keys: [keys/device.pub]\n  output: records.jsonl\n'
      : '';
  writeFileSync(
    path,
    `device:\n  id: update-gw\ndata_dir: data\nkeys:\n  device_private: keys/device.key\n  centre_public: keys/centre.pub\n  generate_if_missing: true\nsources:\n  - type: synthetic\n    name: load\n    rate: 5\n    batch: 1\n${sink}${receiver}`,
  );
}

/**
 * A FAKE RELEASE for the trial tests: a shell script put straight into releases/<version>/edge-agent and
 * recorded as staged, bypassing stage() (which refuses anything but an ELF for this machine, tested on its
 * own). It stands for a new executable that exits at once, aborts or hangs.
 */
export function plantScript(store: ReleaseStore, version: string, script: string): void {
  const dir = join(store.root, 'releases', version);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'edge-agent'), `#!/bin/sh\n${script}\n`);
  chmodSync(join(dir, 'edge-agent'), 0o755);
  store.change((state) => {
    state.releases[version] = { release_counter: 1, sha256: '0'.repeat(64), arch: 'x64', staged_at: new Date().toISOString() };
  });
}
