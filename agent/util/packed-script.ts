import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { getAsset, isSea } from 'node:sea';
import { debuglog } from 'node:util';
import { compileFunction } from 'node:vm';

/** `NODE_DEBUG=edge-agent-scripts` prints each lazy script as it is evaluated (what a start paid for). */
const trace = debuglog('edge-agent-scripts');

/** What a lazy script exports: the `require()` result of each library it carries, by import specifier. */
type LazyScript = Record<string, unknown>;

const evaluated = new Map<string, LazyScript>();

/**
 * The libraries a lazy script carries, evaluated at its first use. Only the executable's main script calls
 * this (scripts/build/bundle.ts puts the calls in place of the heavy optional libraries, see
 * docs/packaging.md, "Lazy scripts"); the source tree imports those libraries directly.
 *
 * The script is an asset of the single executable (`lazy/NAME.cjs`), or the file beside the bundle when
 * the bundle runs under plain node. It is compiled as a CommonJS module with the main script's `require`
 * (built-in modules, absent optional dependencies) and `__filename`, so it behaves as it did inlined.
 */
export function packedScript(name: string, mainFilename: string): LazyScript {
  const known = evaluated.get(name);
  if (known !== undefined) return known;
  const file = `lazy/${name}.cjs`;
  const source = isSea() ? getAsset(file, 'utf8') : readFileSync(join(dirname(mainFilename), file), 'utf8');
  const module = { exports: {} as LazyScript };
  const wrapper = compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], {
    filename: `edge-agent-${name}.cjs`,
  });
  trace('evaluating %s (%d bytes)', name, source.length);
  wrapper(module.exports, createRequire(mainFilename), module, mainFilename, dirname(mainFilename));
  evaluated.set(name, module.exports);
  return module.exports;
}
