import type { Command } from 'commander';
import type { DefineCommand, Exit } from './command.ts';
import { defineFleetCommand } from './fleet-command.ts';
import { defineFleetList } from './fleet-list.ts';
import { defineFleetPush } from './fleet-push.ts';

/** A `fleet` subcommand: adds itself to the group. */
export type DefineFleetCommand = (group: Command, exit: Exit) => void;

/** In the order `edge-agent fleet --help` lists them; the key and signing commands add theirs here. */
export const FLEET_COMMANDS: DefineFleetCommand[] = [defineFleetPush, defineFleetList, defineFleetCommand];

/** `edge-agent fleet …`: the operator's side of remote control (docs/remote.md). */
export const fleet: DefineCommand = (parent: Command, exit) => {
  const group = parent
    .command('fleet')
    .summary('operate a fleet: keys, signing, push configs, list devices, send commands')
    .description('The operator side of remote control over MQTT (docs/remote.md).')
    .usage('COMMAND [options]');
  for (const define of FLEET_COMMANDS) define(group, exit);
};
