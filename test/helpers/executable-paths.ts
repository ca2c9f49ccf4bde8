import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const NODE = join(ROOT, 'node_modules/.bin/node');
/** What the executable is built from: a change to any of them makes it stale. */
export const EXECUTABLE_SOURCES = ['agent', 'drivers', 'scripts/build', 'package.json', 'package-lock.json', 'pkg.config.json'];

export const executablePath = (target: string): string => join(ROOT, 'dist', `edge-agent-${target}`);
