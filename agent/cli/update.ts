/**
 * `edge-agent update …`: the device side of self-update (docs/update.md). `guard` and `stopped` are what the
 * unit runs around every start, from the committed executable; `status`, `apply` and `rollback` are for an
 * operator on the device.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError } from '../errors.ts';
import { expireTrial } from '../update/expire.ts';
import { GUARD_DEFAULTS, guardStart, recordStop } from '../update/guard.ts';
import { locateRelease } from '../update/locate.ts';
import { ReleaseStore, UpdateRefusal } from '../update/releases.ts';
import { STATE_FILE } from '../update/state.ts';
import { parseDuration } from '../util/units.ts';
import type { DefineCommand, Exit } from './command.ts';

interface StateDirOption {
  stateDir?: string;
}

export const update: DefineCommand = (parent: Command, exit: Exit) => {
  const group = parent
    .command('update')
    .summary('self-update on the device: the guard, status, a local apply or rollback (docs/update.md)')
    .description('The release layout under the state directory (--state-dir, else EDGE_AGENT_UPDATE_DIR, else the layout this executable runs from).')
    .usage('COMMAND [options]');
  const stateDir = (c: Command) => c.option('--state-dir <DIR>', 'the state directory (default: EDGE_AGENT_UPDATE_DIR, or the layout of this executable)');
  stateDir(group.command('guard'))
    .summary('before a start (ExecStartPre): count a trial start, or roll the trial back')
    .description(
      'Run by the unit from the committed executable before every start: rolls a trial version back when its last run gave up on its health gate, aborted, hit the watchdog or start timeout, passed its deadline, or was started --max-starts times; else counts the start. Puts the links right from the state file.',
    )
    .option('--max-starts <N>', 'starts of a trial version before it is rolled back', String(GUARD_DEFAULTS.maxStarts))
    .action((o: StateDirOption & { maxStarts: string }) => {
      const maxStarts = Number(o.maxStarts);
      if (!Number.isInteger(maxStarts) || maxStarts < 1) throw new AgentError('USAGE', `--max-starts must be a whole number above 0, not ${o.maxStarts}`);
      const decision = guardStart(storeFor(o), { ...GUARD_DEFAULTS, maxStarts });
      process.stderr.write(`${JSON.stringify({ msg: 'update guard', ...decision })}\n`);
      exit(0);
    });
  stateDir(group.command('expire'))
    .summary('from a timer: SIGKILL a trial release still running past its deadline, for the guard to roll back')
    .action((o: StateDirOption) => {
      const expired = expireTrial(storeFor(o));
      if (expired) process.stderr.write(`${JSON.stringify({ msg: 'update trial expired', ...expired })}\n`);
      exit(0);
    });
  stateDir(group.command('stopped'))
    .summary('after a stop (ExecStopPost): record how a trial run ended')
    .action((o: StateDirOption) => {
      const exitRecord = recordStop(storeFor(o), process.env);
      if (exitRecord) process.stderr.write(`${JSON.stringify({ msg: 'update trial run ended', ...exitRecord })}\n`);
      exit(0);
    });
  stateDir(group.command('status'))
    .summary('print the update state (JSON): committed, trial, broken versions, last result, links')
    .action((o: StateDirOption) => {
      const store = storeFor(o);
      process.stdout.write(`${JSON.stringify({ ...store.state(), links: store.links() }, null, 2)}\n`);
      exit(0);
    });
  stateDir(group.command('apply'))
    .summary('stage a local executable and start its trial (the next start of the unit runs it)')
    .usage('FILE --release VERSION [--release-counter N] [--deadline DURATION]')
    .argument('<FILE>', 'the executable (it is copied)')
    .requiredOption('--release <VERSION>', 'its release name')
    .option('--release-counter <N>', 'its release counter', '0')
    .option('--deadline <DURATION>', 'time to pass the health gate and commit, from now', '10m')
    .action((file: string, o: StateDirOption & { release: string; releaseCounter: string; deadline: string }) => {
      const deadline = parseDuration(o.deadline);
      if (deadline === undefined) throw new AgentError('USAGE', `--deadline ${o.deadline} is not a duration (30s, 10m)`);
      const store = storeFor(o);
      if (!existsSync(file)) throw new AgentError('USAGE', `${file} does not exist`);
      try {
        store.stageFile(o.release, file, Number(o.releaseCounter));
      } catch (err) {
        if (err instanceof UpdateRefusal) throw new AgentError('REMOTE_REFUSED', `${file} refused: ${err.reason}`, { cause: err });
        throw err;
      }
      store.beginTrial(o.release, deadline);
      process.stdout.write(
        `${o.release} staged; it must commit within ${o.deadline} of its first start; restart the unit to start it (systemctl restart edge-agent)\n`,
      );
      exit(0);
    });
  stateDir(group.command('rollback'))
    .summary("end a trial now: back to the committed version (reason 'operator')")
    .action((o: StateDirOption) => {
      const result = storeFor(o).rollback('operator', 'rolled back by an operator');
      process.stdout.write(result ? `${result.version} rolled back; ${result.running} is current\n` : 'no trial under way\n');
      exit(0);
    });
};

function storeFor(o: StateDirOption): ReleaseStore {
  const root = o.stateDir ?? process.env.EDGE_AGENT_UPDATE_DIR;
  if (root) {
    if (!existsSync(join(root, STATE_FILE))) throw new AgentError('USAGE', `no release layout at ${root} (no ${STATE_FILE}; edge-agent install makes one)`);
    return new ReleaseStore(root);
  }
  const located = locateRelease();
  if (!located) throw new AgentError('USAGE', 'no release layout: give --state-dir, set EDGE_AGENT_UPDATE_DIR, or run edge-agent install first');
  return located.store;
}
