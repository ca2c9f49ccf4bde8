/**
 * `edge-agent fleet …`: the operator's side of fleet management (docs/remote.md). Each subcommand is a
 * DefineCommand in FLEET_COMMANDS, in the order help lists them; adding one is one entry there.
 */
import type { Command } from 'commander';
import type { DefineCommand, Exit } from './command.ts';
import { fleetOperator, fleetRevoke, fleetRoot } from './fleet-keys.ts';
import { fleetSign } from './fleet-sign.ts';
import { defineFleetCommand } from './fleet-command.ts';
import { defineFleetList } from './fleet-list.ts';
import { defineFleetPush } from './fleet-push.ts';
import { fleetPushUpdate } from './fleet-push-update.ts';

const FLEET_COMMANDS: readonly DefineCommand[] = [
  fleetRoot,
  fleetOperator,
  fleetRevoke,
  fleetSign,
  defineFleetPush,
  fleetPushUpdate,
  defineFleetList,
  defineFleetCommand,
];

/** The `fleet` group with FLEET_COMMANDS and then `extra` (for a caller, or a test, adding its own). */
export function defineFleet(extra: readonly DefineCommand[] = []): DefineCommand {
  return (parent: Command, exit: Exit) => {
    const group = parent
      .command('fleet')
      .summary('manage a fleet: keys, signed configs and commands, push, list devices, send commands')
      .description('Root keys (offline, k of n) certify operator keys; operator keys sign configs and commands that devices verify (docs/remote.md).')
      .usage('COMMAND [options]');
    for (const define of [...FLEET_COMMANDS, ...extra]) define(group, exit);
  };
}

export const fleet: DefineCommand = defineFleet();
