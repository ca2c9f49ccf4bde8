/**
 * The systemd unit `edge-agent install` writes. Why each line is there:
 *
 * - `ExecStartPre=<state>/committed/edge-agent update guard`: the last known good executable decides, before
 *   every start, whether a trial version gets another start or is rolled back (agent/update/guard.ts). A
 *   broken new executable never runs this line. `ExecStopPost=… update stopped` (also the committed copy)
 *   records how each run ended ($SERVICE_RESULT, $EXIT_CODE, $EXIT_STATUS), which the guard reads.
 * - `ExecStart=<state>/current/edge-agent run …`: whatever the guard left `current` pointing at.
 * - `Restart=on-failure` + `RestartSec`: a trial version that crashes comes back through the guard, which
 *   rolls it back after `maxStarts` (3) starts; `StartLimitBurst` (10 in `StartLimitIntervalSec` 600 s) is
 *   well above that, so systemd does not give up on the unit before the guard has restored the committed
 *   version. `OnFailure=` is not used: it only fires once systemd gave up (start limit hit), when the guard
 *   has long decided; a unit there would have to run as root to restart this one, which is more to trust.
 * - `Type=notify`, `NotifyAccess=all`: the agent says READY=1 and pings WATCHDOG=1 through the
 *   `systemd-notify` binary (a child process, hence `all`). `TimeoutStartSec` kills a start that never gets
 *   ready; `WatchdogSec` kills one whose event loop stopped (SIGABRT; $SERVICE_RESULT=watchdog), and the
 *   guard rolls a trial version back for either (`no_health_in_time`).
 * - `MemoryMax`, `Environment=MALLOC_ARENA_MAX=1` (glibc's per-thread arenas cost RSS on small devices).
 * - Hardening keeps serial ports usable: `SupplementaryGroups=dialout`, `DevicePolicy=closed` with
 *   `DeviceAllow=` for the serial device classes, and no `PrivateDevices=` (it would hide /dev/tty*).
 *   No `MemoryDenyWriteExecute=`: V8's JIT needs writable code pages.
 * - `EDGE_AGENT_NATIVE_CACHE` in the state directory: the executable writes its native addons out there
 *   (the service user has no home; a noexec or read-only home would break the default).
 */
import { RESTART_INTO_TRIAL_EXIT } from './guard.ts';

export interface UnitOptions {
  /** The state directory on the device (not prefixed by --root). */
  stateDir: string;
  configPath: string;
  user: string;
  serialGroup: string;
  memoryMax: string;
  watchdogSec: number;
  startTimeoutSec: number;
  restartSec: number;
  /** Extra directories the agent writes to (data_dir outside the state directory). */
  readWritePaths: string[];
  nativeCache: string;
}

export const UNIT_NAME = 'edge-agent.service';
export const TRIAL_TIMER = 'edge-agent-trial.timer';
export const TRIAL_SERVICE = 'edge-agent-trial.service';

/**
 * The timer that ends a trial past its deadline while the release still runs (agent/update/expire.ts), and
 * the one-shot service it starts: the committed executable, as the service user (it may signal its own
 * processes only).
 */
export function trialTimerUnits(o: UnitOptions): Record<string, string> {
  return {
    [TRIAL_SERVICE]: `# Written by edge-agent install; docs/update.md.
[Unit]
Description=edge-agent: end a self-update trial past its deadline

[Service]
Type=oneshot
User=${o.user}
Group=${o.user}
Environment=EDGE_AGENT_UPDATE_DIR=${o.stateDir}
Environment=EDGE_AGENT_NATIVE_CACHE=${o.nativeCache}
ExecStart=${o.stateDir}/committed/edge-agent update expire
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
`,
    [TRIAL_TIMER]: `# Written by edge-agent install; docs/update.md.
[Unit]
Description=edge-agent: look for a self-update trial past its deadline

[Timer]
OnBootSec=1min
OnUnitActiveSec=30s
AccuracySec=5s

[Install]
WantedBy=timers.target
`,
  };
}

export function unitText(o: UnitOptions): string {
  const exe = (link: string) => `${o.stateDir}/${link}/edge-agent`;
  const paths = [o.stateDir, ...o.readWritePaths].join(' ');
  return `# Written by edge-agent install; docs/update.md explains every line.
[Unit]
Description=edge-agent store-and-forward agent
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=600
StartLimitBurst=10

[Service]
Type=notify
NotifyAccess=all
User=${o.user}
Group=${o.user}
SupplementaryGroups=${o.serialGroup}
WorkingDirectory=${o.stateDir}
Environment=MALLOC_ARENA_MAX=1
Environment=EDGE_AGENT_UPDATE_DIR=${o.stateDir}
Environment=EDGE_AGENT_NATIVE_CACHE=${o.nativeCache}
ExecStartPre=${exe('committed')} update guard
ExecStart=${exe('current')} run --config ${o.configPath} --log-format json
ExecStopPost=${exe('committed')} update stopped
Restart=on-failure
RestartSec=${o.restartSec}
RestartForceExitStatus=${RESTART_INTO_TRIAL_EXIT}
SuccessExitStatus=${RESTART_INTO_TRIAL_EXIT}
TimeoutStartSec=${o.startTimeoutSec}
TimeoutStopSec=30
WatchdogSec=${o.watchdogSec}
MemoryMax=${o.memoryMax}
StandardOutput=journal
StandardError=journal
SyslogIdentifier=edge-agent
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=${paths}
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
CapabilityBoundingSet=
DevicePolicy=closed
DeviceAllow=char-ttyS rw
DeviceAllow=char-ttyUSB rw
DeviceAllow=char-ttyACM rw
DeviceAllow=char-ttyAMA rw

[Install]
WantedBy=multi-user.target
`;
}

/** The unit's settings as systemd reads them: `Key=value` lines by section, repeated keys in order. */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      sections.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 0) continue;
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}
