/**
 * The single executables the build tests run, built when missing or stale. Test files run in parallel and
 * several of them need the executable: the build runs under an exclusive lock (flock), so two builds never
 * write the same output at once, and a file that waited finds it fresh and builds nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { executablePath, NODE, ROOT } from './executable-paths.ts';

const LOCK_DIR = join(ROOT, 'node_modules', '.cache');

export function builtExecutable(target: 'linux-x64' | 'linux-arm64'): string {
  mkdirSync(LOCK_DIR, { recursive: true });
  execFileSync('flock', [join(LOCK_DIR, 'edge-agent-build.lock'), NODE, join(ROOT, 'test/helpers/build-if-stale.ts'), target], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 600_000,
  });
  return executablePath(target);
}
