/**
 * One ReleaseStore operation in a process of its own that SIGKILLs itself right after a named durable step
 * (`staged`, `state`, `link:current`, …): how test/update/releases.test.ts cuts an update at every point.
 *   node test/helpers/release-step.ts ROOT OPERATION VERSION KILL_AT [FILE]
 * OPERATION: stage (FILE copied in), trial, commit, rollback.
 */
import { ReleaseStore } from '../../agent/update/releases.ts';

const [root, operation, version, killAt, file] = process.argv.slice(2) as [string, string, string, string, string | undefined];
const store = new ReleaseStore(root, {
  onStep: (step) => {
    if (step === killAt) process.kill(process.pid, 'SIGKILL');
  },
});
if (operation === 'stage') store.stageFile(version, file!, 2);
else if (operation === 'trial') store.beginTrial(version, 60_000);
else if (operation === 'commit') store.commit(version);
else if (operation === 'rollback') store.rollback('operator');
process.stdout.write('completed without reaching the kill point\n');
