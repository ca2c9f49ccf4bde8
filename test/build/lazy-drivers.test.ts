/**
 * The executable keeps a driver's implementation deferred, as the source tree does (a driver's `create` loads
 * it with `import()`, agent/sdk/define.ts; test/cli/run-loads-named-drivers.test.ts checks a run's modules).
 * esbuild bundles every module of drivers/ as a deferred module (an `init_…` function that evaluates it once)
 * and turns an `import()` of one into a call of its init inside `Promise.resolve().then(…)`; a static import
 * becomes a call at the top of the importer's init. Read from the built bundle: an implementation's init is
 * called only from such a dynamic import or from another implementation, never from a declaration (which
 * every start evaluates) nor from the core.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { driverIndexOf, isDriverDeclaration } from '../helpers/driver-modules.ts';
import { builtExecutable } from '../helpers/executable.ts';
import { ROOT } from '../helpers/executable-paths.ts';

const MODULE = /([A-Za-z_$][\w$]*)=__esm\(\{"([^"]+)"\(\)\{/g;
const escapeDollars = (s: string): string => s.replace(/[$]/g, '\\$&');

describe('driver implementations in the executable', {
  skip: process.arch === 'x64' && process.platform === 'linux' ? false : 'the host is not linux-x64',
}, () => {
  it('are evaluated only through the dynamic import in their driver’s create', () => {
    builtExecutable('linux-x64');
    const bundle = readFileSync(join(ROOT, 'dist/bundle/edge-agent.cjs'), 'utf8');
    const modules = [...bundle.matchAll(MODULE)].map((m) => ({ init: m[1]!, path: m[2]!, at: m.index }));
    const enclosing = (at: number): string | undefined => modules.findLast((m) => m.at < at)?.path;
    const implementations = modules.filter((m) => m.path.startsWith('drivers/') && !isDriverDeclaration(m.path));
    // The list is the real one: every driver has an implementation apart from its declaration.
    assert.equal(new Set(implementations.map((m) => driverIndexOf(m.path)).filter(Boolean)).size, 15);

    const wrong: string[] = [];
    let dynamic = 0;
    for (const m of implementations) {
      for (const call of bundle.matchAll(new RegExp(`(Promise\\.resolve\\(\\)\\.then\\(\\(\\)=>\\()?(?<![\\w$])${escapeDollars(m.init)}\\(\\)`, 'g'))) {
        const by = enclosing(call.index);
        // A dynamic import (a driver's create) evaluates it when called, not when its importer is evaluated.
        if (call[1] !== undefined) dynamic++;
        else if (by === undefined || !by.startsWith('drivers/') || isDriverDeclaration(by)) {
          wrong.push(`${m.path} evaluated by ${by ?? 'the top of the bundle'}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
    assert.ok(dynamic >= 15, `only ${dynamic} dynamic imports of driver implementations`);
  });
});
