/**
 * uPlot's script and style for the status page, served by the agent itself (no CDN: a gateway's technician
 * may have no internet, and a page must not load code from elsewhere). In the single executable they are
 * assets of its blob (scripts/build/build.ts); from source, the files of the installed package. Read once,
 * on the first request for them.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { getAsset, isSea } from 'node:sea';

export type UplotAsset = 'uplot.js' | 'uplot.css';
const FILES: Record<UplotAsset, string> = { 'uplot.js': 'uplot/dist/uPlot.iife.min.js', 'uplot.css': 'uplot/dist/uPlot.min.css' };
const cache = new Map<UplotAsset, string>();

/**
 * Where to resolve the package from: this file in the CommonJS bundle run outside the executable, else the
 * script that started the process (the source tree's agent/cli/main.ts, a test, a benchmark: all inside the
 * repository). Not import.meta, which the CommonJS bundle does not have.
 */
function here(): string {
  return typeof __filename === 'string' ? __filename : resolve(process.argv[1] ?? join(process.cwd(), 'x.js'));
}

export function uplotAsset(name: UplotAsset): string {
  const known = cache.get(name);
  if (known !== undefined) return known;
  const text = isSea() ? getAsset(name, 'utf8') : readFileSync(createRequire(here()).resolve(FILES[name]), 'utf8');
  cache.set(name, text);
  return text;
}
