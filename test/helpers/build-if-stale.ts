/**
 * Builds one target's executable when it is missing or older than any of its sources. Run by
 * test/helpers/executable.ts under an exclusive lock: `node test/helpers/build-if-stale.ts linux-x64`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EXECUTABLE_SOURCES, executablePath, NODE, ROOT } from './executable-paths.ts';

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

const target = process.argv[2] ?? 'linux-x64';
const out = executablePath(target);
const newest = Math.max(...EXECUTABLE_SOURCES.map((s) => newestMtime(join(ROOT, s))));
if (!existsSync(out) || statSync(out).mtimeMs <= newest) {
  const started = performance.now();
  execFileSync(NODE, ['scripts/build/build.ts', '--targets', target], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
  process.stderr.write(`# built ${out} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}
