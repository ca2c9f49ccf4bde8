/**
 * Builds the single executables: `npm run build [-- --targets linux-x64,linux-arm64]` (default linux-x64).
 *
 *   1. esbuild bundles agent/cli/bin.ts into dist/bundle/edge-agent.cjs (scripts/build/bundle.ts);
 *   2. the target's native addons (better-sqlite3, serialport; prebuilt in their npm packages) are copied to
 *      dist/bundle/native/;
 *   3. Node's single-executable tooling writes the application blob: the bundle as main script, the addons and
 *      the lazy scripts (dist/bundle/lazy/, optional heavy libraries evaluated at first use) as assets, the heap caps as execArgv (so the runtime starts with them: no re-exec), and for the host's
 *      architecture a V8 code cache of the bundle;
 *   4. the npm-provided Node binary for the target (scripts/build/node-binaries.ts; nothing is fetched from
 *      nodejs.org or GitHub) is copied, stripped of its symbol tables (-18 MB; a cross strip for arm64), and
 *      the blob is injected into it (postject), giving dist/edge-agent-linux-<arch>.
 * Sizes and times are printed. See docs/packaging.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_HEAP_CAPS, heapCapArgs, MEMORY_FLAGS } from '../../agent/cli/heap-caps.ts';
import { bundle } from './bundle.ts';
import { type Arch, npmNodeBinary } from './node-binaries.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The packaging settings the repository's top level keeps (targets, output directory). */
const PACKAGING = JSON.parse(readFileSync(join(REPO, 'pkg.config.json'), 'utf8')) as { targets: string[]; outputPath: string };
const DIST = join(REPO, PACKAGING.outputPath);
const BUNDLE_DIR = join(DIST, 'bundle');
const BUNDLE = join(BUNDLE_DIR, 'edge-agent.cjs');
const NATIVE_DIR = join(BUNDLE_DIR, 'native');
/** Node binaries (arm64); under node_modules so that it is ignored and goes with `rm -rf node_modules`. */
const CACHE = join(REPO, 'node_modules', '.cache', 'edge-agent-build');
const HOST_NODE = join(REPO, 'node_modules', 'node', 'bin', 'node');
const POSTJECT = join(REPO, 'node_modules', 'postject', 'dist', 'cli.js');
/** The sentinel Node's single-executable support looks for (Node's documentation, "Injecting the blob"). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const ARCHES: Record<string, Arch> = { 'linux-x64': 'x64', 'linux-arm64': 'arm64' };
const TARGETS: Record<string, Arch> = Object.fromEntries(
  PACKAGING.targets.map((t) => {
    const arch = ARCHES[t];
    if (!arch) throw new Error(`pkg.config.json: unknown target ${t}; known: ${Object.keys(ARCHES).join(', ')}`);
    return [t, arch];
  }),
);
/** strip for each target's ELF (binutils; arm64 from Debian's binutils-aarch64-linux-gnu). */
const STRIP: Record<Arch, string[]> = { x64: ['strip', 'x86_64-linux-gnu-strip'], arm64: ['aarch64-linux-gnu-strip'] };

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const log = (msg: string): void => void process.stdout.write(`build: ${msg}\n`);

function nodeVersion(): string {
  const { version } = JSON.parse(readFileSync(join(REPO, 'node_modules', 'node', 'package.json'), 'utf8')) as { version: string };
  return version;
}

function parseTargets(): string[] {
  const { values } = parseArgs({ options: { targets: { type: 'string', default: PACKAGING.targets[0] ?? 'linux-x64' }, target: { type: 'string' } } });
  const list = (values.target ?? values.targets)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const t of list) if (!(t in TARGETS)) throw new Error(`unknown target ${t}; known: ${Object.keys(TARGETS).join(', ')}`);
  return [...new Set(list)];
}

/** Copies the target's prebuilt addons to dist/bundle/native/; returns the blob's assets (name → file). */
function stageNativeAddons(arch: Arch): Record<string, string> {
  rmSync(NATIVE_DIR, { recursive: true, force: true });
  mkdirSync(NATIVE_DIR, { recursive: true });
  // better-sqlite3 13 ships prebuilt addons for every supported platform in its npm package.
  const sqlite = join(NATIVE_DIR, `better-sqlite3-linux-${arch}.node`);
  copyFileSync(join(REPO, 'node_modules', 'better-sqlite3', 'prebuilds', `linux-${arch}.node`), sqlite);
  // So does serialport's binding (glibc builds; the executable needs glibc anyway). The bundle loads it by
  // this name instead of through node-gyp-build, which cannot search inside the executable (bundle.ts).
  const prebuilds = join(REPO, 'node_modules', '@serialport', 'bindings-cpp', 'prebuilds', `linux-${arch}`);
  const glibc = readdirSync(prebuilds).find((f) => f.endsWith('.glibc.node'));
  if (!glibc) throw new Error(`no glibc serialport binding in ${prebuilds}`);
  const serial = join(NATIVE_DIR, `serialport-linux-${arch}.node`);
  copyFileSync(join(prebuilds, glibc), serial);
  // Asset names are agent/util/packed-addon.ts's PackedAddon names.
  // The status page's charts (agent/observe/assets.ts reads them by these names): served by the agent, no CDN.
  const uplot = join(REPO, 'node_modules', 'uplot', 'dist');
  // The addons' hashes, so that the executable finds a copy it wrote earlier without hashing the packed
  // addon at every start (agent/util/packed-addon.ts).
  const manifest = join(NATIVE_DIR, 'native-addons.json');
  const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
  writeFileSync(manifest, `${JSON.stringify({ 'better-sqlite3': sha256(sqlite), serialport: sha256(serial) })}\n`);
  return {
    'better-sqlite3.node': sqlite,
    'serialport.node': serial,
    'native-addons.json': manifest,
    'uplot.js': join(uplot, 'uPlot.iife.min.js'),
    'uplot.css': join(uplot, 'uPlot.min.css'),
  };
}

function firstCommand(candidates: string[]): string | undefined {
  return candidates.find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
}

/**
 * The application blob for one target. The code cache is V8 bytecode for the host's architecture, so it
 * goes only into the host's executable (for another target Node would reject it at start and compile anyway).
 */
function writeBlob(arch: Arch, assets: Record<string, string>, blob: string): void {
  const config = join(BUNDLE_DIR, `sea-config-${arch}.json`);
  const seaConfig = {
    main: BUNDLE,
    output: blob,
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: arch === process.arch,
    // The default heap caps, in force from the runtime's start; agent/cli/bin.ts restarts once only when
    // the operator asks for other caps, passing them as --node-options (which "cli" allows; NODE_OPTIONS
    // cannot override execArgv).
    execArgv: heapCapArgs(DEFAULT_HEAP_CAPS),
    execArgvExtension: 'cli',
    assets,
  };
  writeFileSync(config, `${JSON.stringify(seaConfig, null, 2)}\n`);
  // The code cache is made under the V8 flags the executable runs with: V8 rejects, at every start, a cache
  // made under flags that change code generation (MEMORY_FLAGS' --optimize-for-size does).
  execFileSync(HOST_NODE, [...MEMORY_FLAGS, '--experimental-sea-config', config], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Copies the target's Node binary to `out`, strips it and injects the blob. */
function makeExecutable(arch: Arch, node: string, blob: string, out: string): { node: number; stripped: number } {
  const strip = firstCommand(STRIP[arch]);
  if (strip === undefined) {
    throw new Error(
      `no strip for linux-${arch} (tried ${STRIP[arch].join(', ')}); on Debian: apt-get install ${arch === 'arm64' ? 'binutils-aarch64-linux-gnu' : 'binutils'}`,
    );
  }
  rmSync(out, { force: true });
  copyFileSync(node, out);
  chmodSync(out, 0o755);
  // Symbol tables only: the code and the dynamic symbols native addons link against stay.
  execFileSync(strip, ['--strip-all', out]);
  const stripped = statSync(out).size;
  const r = spawnSync(HOST_NODE, [POSTJECT, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { encoding: 'utf8' });
  // postject's ELF library warns about the note section it adds; anything else is shown.
  const noise = /^(warning: Can't find string offset for section name '\.note.*|.*Injection done!.*|Start injection of .*|\s*)$/;
  const other = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => !noise.test(l.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '')));
  if (other.length > 0) process.stderr.write(`${other.join('\n')}\n`);
  if (r.status !== 0) throw new Error(`injecting the blob into ${out} failed (exit ${r.status ?? r.signal})`);
  return { node: statSync(node).size, stripped };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const targets = parseTargets();
  const version = nodeVersion();
  log(`targets ${targets.join(', ')}; Node ${version} from the npm registry`);

  let t = performance.now();
  const b = await bundle(join(REPO, 'agent', 'cli', 'bin.ts'), BUNDLE);
  log(
    `bundle ${relative(REPO, b.outfile)} ${mb(b.bytes)} in ${secs(performance.now() - t)}; largest: ${b.byPackage
      .slice(0, 6)
      .map(([p, n]) => `${p} ${mb(n)}`)
      .join(', ')}`,
  );
  log(
    `lazy scripts: ${Object.entries(b.lazy)
      .map(([name, { bytes }]) => `${name} ${mb(bytes)}`)
      .join(', ')}`,
  );
  const lazyAssets = Object.fromEntries(Object.entries(b.lazy).map(([name, { file }]) => [`lazy/${name}.cjs`, file]));

  const results: { target: string; out: string; bytes: number; ms: number }[] = [];
  for (const target of targets) {
    const arch = TARGETS[target]!;
    t = performance.now();
    const node = npmNodeBinary(REPO, CACHE, arch, version);
    const assets = { ...stageNativeAddons(arch), ...lazyAssets };
    const blob = join(BUNDLE_DIR, `sea-prep-${arch}.blob`);
    writeBlob(arch, assets, blob);
    const out = join(DIST, `edge-agent-${target}`);
    const sizes = makeExecutable(arch, node, blob, out);
    const ms = performance.now() - t;
    const bytes = statSync(out).size;
    results.push({ target, out, bytes, ms });
    log(`${relative(REPO, out)} ${mb(bytes)} in ${secs(ms)} (Node ${mb(sizes.node)}, stripped ${mb(sizes.stripped)}, blob ${mb(statSync(blob).size)})`);
  }

  // Smoke test what the host can run.
  for (const r of results) {
    if (r.target !== `linux-${process.arch}`) continue;
    const v = execFileSync(r.out, ['--version'], { encoding: 'utf8' }).trim();
    log(`${relative(REPO, r.out)} --version: ${v}`);
  }
  log(`done in ${secs(performance.now() - t0)}: ${results.map((r) => `${relative(REPO, r.out)} ${mb(r.bytes)}`).join(', ')}`);
  log(`dist/: ${readdirSync(DIST).join(' ')}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`build: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
