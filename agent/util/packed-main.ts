/**
 * The single executable's main script (scripts/build/build.ts builds it into dist/bundle/loader.cjs): it
 * compiles the application (the bundle of agent/cli/bin.ts, the asset `main.cjs`) with a V8 code cache (the
 * asset `main.cache`) and runs it. See docs/packaging.md, "Start: the code cache of a real start".
 *
 * Why not the code cache Node's single-executable support makes (`useCodeCache`): V8 compiles a function
 * when it is first called, and that cache is made right after the top level is compiled, so it holds only
 * the few functions compiled eagerly; every function a start calls was compiled from source at every start
 * (most of the executable's start). The build makes `main.cache` from the executable itself after a real
 * `run` (the first build of the executable carries no cache; run with EDGE_AGENT_CODE_CACHE_OUT=FILE it
 * writes one when it gets SIGINT), so it holds the functions a start calls, compiled for this very V8 and its flags.
 *
 * V8 checks a cache before using it (its version, its flags, the source): one it rejects (another V8, other
 * flags given with --node-options) costs nothing but the compilation it would have saved; the application
 * starts the same. NODE_DEBUG=edge-agent-start says which it was.
 *
 * The application runs as the executable's main script ran before: a CommonJS module whose file is the
 * executable (Node's own `__filename` for a single executable's main script), with a `require` of that file.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { getAsset, getRawAsset } from 'node:sea';
import { debuglog } from 'node:util';
import { Script } from 'node:vm';
import { startFlagsAgain } from './running-flags.ts';

const trace = debuglog('edge-agent-start');

function codeCache(): Uint8Array | undefined {
  try {
    return new Uint8Array(getRawAsset('main.cache')); // a view of the executable's mapped blob, no copy
  } catch {
    return undefined; // the build's first executable, which makes the cache
  }
}

// Timed only when traced: the global `performance` loads Node's perf_hooks (≈1 ms of every start).
const started = trace.enabled ? process.hrtime.bigint() : 0n;
const cachedData = codeCache();
// The bundle as the build wrapped it (scripts/build/build.ts, wrapAsFunction): a function of the CommonJS
// module's variables, so that it runs as the main script did, with no copy of its 2.4 MB made here.
const script = new Script(getAsset('main.cjs', 'utf8'), {
  filename: 'edge-agent.cjs',
  cachedData,
  // No loader for `import()`: the bundle has none (scripts/build/bundle.ts refuses them), and Node's only one
  // (vm's USE_MAIN_CONTEXT_DEFAULT_LOADER) printed an ExperimentalWarning into the agent's log.
});
const ms = trace.enabled ? (Number(process.hrtime.bigint() - started) / 1e6).toFixed(1) : '';
if (cachedData === undefined) trace('no code cache: compiling from source (%s ms)', ms);
else if (script.cachedDataRejected === true) trace('code cache rejected (%d bytes): compiling from source (%s ms)', cachedData.byteLength, ms);
else trace('code cache accepted (%d bytes, %s ms)', cachedData.byteLength, ms);

const out = process.env.EDGE_AGENT_CODE_CACHE_OUT;
if (out !== undefined && cachedData === undefined) {
  // The build's instrumented start (scripts/build/code-cache.ts) sends SIGINT once the agent is running:
  // every function the start called has been compiled then, and the shutdown has not run yet (its functions
  // would only make the cache, and every start's deserialising, larger). Prepended, so it runs before the
  // agent's own handler begins the shutdown.
  delete process.env.EDGE_AGENT_CODE_CACHE_OUT;
  // The running agent has set MEMORY_FLAGS by now; the cache must carry the flags of a start.
  process.prependOnceListener('SIGINT', () => {
    startFlagsAgain();
    writeFileSync(out, script.createCachedData());
  });
}

const filename = process.execPath;
const application = { exports: {} };
(script.runInThisContext() as (...args: unknown[]) => void)(application.exports, createRequire(filename), application, filename, dirname(filename));
