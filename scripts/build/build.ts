/**
 * Builds the single executables: `npm run build [-- --targets linux-x64,linux-arm64]` (default linux-x64).
 *
 *   1. esbuild bundles agent/cli/bin.ts into dist/bundle/edge-agent.cjs (scripts/build/bundle.ts);
 *   2. the target's better-sqlite3 prebuilt addon is copied to dist/bundle/native/ (a pkg asset);
 *   3. the npm-provided Node binary for the target is placed where pkg's SEA mode looks for it
 *      (scripts/build/node-binaries.ts): nothing is fetched from nodejs.org or GitHub;
 *   4. pkg (enhanced SEA, pkg.config.json) writes dist/edge-agent-linux-<arch>.
 * Sizes and times are printed. See docs/packaging.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bundle } from './bundle.ts';
import { npmNodeBinary, placeForPkg, type Arch } from './node-binaries.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = join(REPO, 'dist');
const BUNDLE_DIR = join(DIST, 'bundle');
const BUNDLE = join(BUNDLE_DIR, 'edge-agent.cjs');
const NATIVE_DIR = join(BUNDLE_DIR, 'native');
/** Node binaries and pkg's HOME; under node_modules so that it is ignored and goes with `rm -rf node_modules`. */
const CACHE = join(REPO, 'node_modules', '.cache', 'edge-agent-build');
const PKG_HOME = join(CACHE, 'pkg-home');
const PKG_BIN = join(REPO, 'node_modules', '@yao-pkg', 'pkg', 'lib-es5', 'bin.js');
const PKG_CONFIG = join(REPO, 'pkg.config.json');
const TARGETS: Record<string, Arch> = { 'linux-x64': 'x64', 'linux-arm64': 'arm64' };

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const log = (msg: string): void => void process.stdout.write(`build: ${msg}\n`);

function nodeVersion(): string {
  const { version } = JSON.parse(readFileSync(join(REPO, 'node_modules', 'node', 'package.json'), 'utf8')) as { version: string };
  return version;
}

/** pkg.config.json's targets must name the exact Node version: a bare `node24` makes pkg ask nodejs.org which 24.x is latest. */
function checkPkgConfig(version: string): void {
  const config = JSON.parse(readFileSync(PKG_CONFIG, 'utf8')) as { targets?: string[] };
  for (const t of config.targets ?? []) {
    if (!t.startsWith(`node${version}-`)) {
      throw new Error(`pkg.config.json target ${t} does not match the pinned node devDependency ${version}; use node${version}-linux-<arch>`);
    }
  }
}

function parseTargets(): string[] {
  const { values } = parseArgs({ options: { targets: { type: 'string', default: 'linux-x64' }, target: { type: 'string' } } });
  const list = (values.target ?? values.targets)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const t of list) if (!(t in TARGETS)) throw new Error(`unknown target ${t}; known: ${Object.keys(TARGETS).join(', ')}`);
  return [...new Set(list)];
}

function stageNativeAddon(arch: Arch): void {
  rmSync(NATIVE_DIR, { recursive: true, force: true });
  mkdirSync(NATIVE_DIR, { recursive: true });
  // better-sqlite3 13 ships prebuilt addons for every supported platform in its npm package.
  copyFileSync(join(REPO, 'node_modules', 'better-sqlite3', 'prebuilds', `linux-${arch}.node`), join(NATIVE_DIR, `better-sqlite3-linux-${arch}.node`));
  // So does serialport's binding (glibc builds; the executable needs glibc anyway). The bundle loads it by
  // this name instead of through node-gyp-build, which cannot search inside the executable (bundle.ts).
  const prebuilds = join(REPO, 'node_modules', '@serialport', 'bindings-cpp', 'prebuilds', `linux-${arch}`);
  const glibc = readdirSync(prebuilds).find((f) => f.endsWith('.glibc.node'));
  if (!glibc) throw new Error(`no glibc serialport binding in ${prebuilds}`);
  copyFileSync(join(prebuilds, glibc), join(NATIVE_DIR, `serialport-linux-${arch}.node`));
}

function runPkg(target: string, version: string, out: string): void {
  rmSync(out, { force: true });
  const nodeBin = join(REPO, 'node_modules', 'node', 'bin', 'node');
  const args = [PKG_BIN, relative(REPO, BUNDLE), '--config', 'pkg.config.json', '--target', `node${version}-${target}`, '--output', relative(REPO, out)];
  const r = spawnSync(nodeBin, args, {
    cwd: REPO,
    stdio: 'inherit',
    env: { ...process.env, HOME: PKG_HOME, PKG_CACHE_PATH: join(PKG_HOME, '.pkg-cache') },
  });
  if (r.status !== 0) throw new Error(`pkg failed for ${target} (exit ${r.status ?? r.signal})`);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const targets = parseTargets();
  const version = nodeVersion();
  checkPkgConfig(version);
  log(`targets ${targets.join(', ')}; Node ${version} from the npm registry`);

  let t = performance.now();
  const b = await bundle(join(REPO, 'agent', 'cli', 'bin.ts'), BUNDLE);
  log(
    `bundle ${relative(REPO, b.outfile)} ${mb(b.bytes)} in ${secs(performance.now() - t)}; largest: ${b.byPackage
      .slice(0, 6)
      .map(([p, n]) => `${p} ${mb(n)}`)
      .join(', ')}`,
  );

  const results: { target: string; out: string; bytes: number; ms: number }[] = [];
  for (const target of targets) {
    const arch = TARGETS[target]!;
    t = performance.now();
    const from = npmNodeBinary(REPO, CACHE, arch, version);
    placeForPkg(PKG_HOME, arch, version, from);
    stageNativeAddon(arch);
    const out = join(DIST, `edge-agent-${target}`);
    runPkg(target, version, out);
    const ms = performance.now() - t;
    results.push({ target, out, bytes: statSync(out).size, ms });
    log(`${relative(REPO, out)} ${mb(statSync(out).size)} in ${secs(ms)}`);
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
