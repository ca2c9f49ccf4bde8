/**
 * One ReleaseStore operation in a process of its own that stops dead at a chosen point and says so, for
 * test/update/releases-powercut.test.ts to cut the power there (the process is SIGKILLed afterwards):
 *   node test/helpers/release-powercut-step.ts ROOT OPERATION VERSION FILE PAUSE_AT
 * OPERATION: stage (FILE copied in), trial, commit, rollback. PAUSE_AT:
 *   step:<name>   right after the first durable step of that name (`staged`, `state`, `link:current`, …)
 *   call:<k>      right before the k-th synchronous node:fs call the operation makes (a random point between
 *                 the durable steps: between a write and its fsync, a rename and its directory fsync, …)
 *   none          never: the operation completes
 * Lines on stdout: `P <where> <steps passed, comma-separated>` when paused (it then blocks for ever), or
 * `D <fs calls> <steps passed>` when the operation completed.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const [root, operation, version, file, pauseAt] = process.argv.slice(2) as [string, string, string, string, string];
const passed: string[] = [];
const original = { writeSync: fs.writeSync };
let calls = 0;
let counting = false;

function pause(where: string): void {
  original.writeSync(1, `P ${where} ${passed.join(',') || '-'}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // for ever: the power goes, then SIGKILL
}

const callLimit = pauseAt.startsWith('call:') ? Number(pauseAt.slice(5)) : Number.POSITIVE_INFINITY;
const target = fs as unknown as Record<string, unknown>;
for (const name of Object.keys(fs)) {
  const fn = target[name];
  if (!name.endsWith('Sync') || typeof fn !== 'function') continue;
  target[name] = function counted(this: unknown, ...args: unknown[]) {
    if (counting) {
      calls++;
      if (calls === callLimit) pause(`call:${calls}:${name}`);
    }
    return (fn as (...a: unknown[]) => unknown).apply(this, args);
  };
}
// The store imports named bindings from node:fs: this makes them the counted functions too.
syncBuiltinESMExports();

const { ReleaseStore } = await import('../../agent/update/releases.ts');
const store = new ReleaseStore(root, {
  onStep: (step) => {
    passed.push(step);
    if (pauseAt === `step:${step}`) pause(pauseAt);
  },
});
counting = true;
if (operation === 'stage') store.stageFile(version, file, 2);
else if (operation === 'trial') store.beginTrial(version, 60_000);
else if (operation === 'commit') store.commit(version);
else if (operation === 'rollback') store.rollback('operator');
else throw new Error(`unknown operation ${operation}`);
counting = false;
original.writeSync(1, `D ${calls} ${passed.join(',') || '-'}\n`);
