import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Mosquitto } from '../lib/mosquitto.ts';
import type { PowerCutMount } from './fuse-mount.ts';
import type { LinkProxy } from './link-proxy.ts';
import type { Supervised } from './supervisor.ts';

export const FAULT_KINDS = ['agent-kill', 'receiver-kill', 'broker-restart', 'broker-restart-volatile', 'link-cut', 'power-cut', 'disk-full'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultTargets {
  agent: Supervised;
  receiver: Supervised;
  /** The centre's broker (persistence on: a SIGTERM saves its sessions and queued messages). */
  centre: Mosquitto;
  link: LinkProxy;
  /** The power-cut file system under the agent's queue, when power cuts or disk-full are enabled. */
  readonly mount: PowerCutMount | undefined;
  remount(): Promise<PowerCutMount>;
  brokerRestarts?: number;
  log(line: string): void;
}

/** Whether the power-cut file system can simulate a full disk (its `capacity` control command). */
export function diskFullSupported(): boolean {
  return /\bcapacity\b/.test(readFileSync(fileURLToPath(new URL('./powercut_fs.py', import.meta.url)), 'utf8'));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Mosquitto's restart on the same port; another process may have taken the port meanwhile: try again. */
async function restartBroker(t: FaultTargets): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await t.centre.restart();
      t.brokerRestarts = (t.brokerRestarts ?? 0) + 1;
      return;
    } catch (err) {
      if (attempt >= 5) throw err;
      await sleep(500);
    }
  }
}

async function startOrWarn(p: Supervised, t: FaultTargets): Promise<void> {
  if (!(await p.start())) t.log(`${p.name} not ready 60 s after its start (running: ${p.running}): ${p.lastWords.trim().split('\n').slice(-2).join(' | ')}`);
}

/**
 * Applies one fault and undoes it; `param` (0…1, drawn from the run's seed) sets how long it lasts.
 * Returns once everything is back (processes started, link up, broker listening, disk free again).
 */
export async function applyFault(kind: FaultKind, param: number, t: FaultTargets): Promise<void> {
  const downMs = Math.round(param * 2_000);
  switch (kind) {
    case 'agent-kill':
      await t.agent.kill();
      await sleep(downMs);
      await startOrWarn(t.agent, t);
      return;
    case 'receiver-kill':
      await t.receiver.kill();
      await sleep(downMs);
      await startOrWarn(t.receiver, t);
      return;
    case 'broker-restart':
      // SIGTERM: Mosquitto writes its persistence file (sessions, queued messages) on the way out.
      await t.centre.stop();
      await sleep(downMs);
      await restartBroker(t);
      return;
    case 'broker-restart-volatile':
      // As a broker without persistence: whatever it held (the receiver's session and the messages queued
      // for it) is gone after the restart.
      await t.centre.stop();
      rmSync(join(t.centre.dir, 'mosquitto.db'), { force: true });
      await sleep(downMs);
      await restartBroker(t);
      return;
    case 'link-cut':
      t.link.cutLink();
      await sleep(500 + Math.round(param * 8_000));
      t.link.restore();
      return;
    case 'power-cut': {
      const mount = t.mount!;
      // The disk forgets first, so nothing the agent still does between the cut and its death reaches it.
      t.agent.expectDeath();
      await mount.cut(0, Math.floor(param * 2 ** 31));
      await t.agent.kill();
      await mount.unmount();
      await t.remount();
      await sleep(downMs);
      await startOrWarn(t.agent, t);
      return;
    }
    case 'disk-full': {
      // The disk fills up to a few pages above what the queue takes now, stays full a while, then has room
      // again (an operator cleared it, another program's file went).
      const mount = t.mount!;
      const { used } = await mount.stats();
      await mount.capacity(used + 64 * 1024);
      await sleep(1_000 + Math.round(param * 8_000));
      await mount.capacity(null);
      return;
    }
  }
}
