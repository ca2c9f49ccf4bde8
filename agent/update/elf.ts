/**
 * The ELF header check done before a staged executable may ever be started: the file is an ELF executable
 * (magic, 64-bit, little-endian, ET_EXEC or ET_DYN) for the machine the device runs on (`e_machine`). A file
 * that is not (a truncated download, a script, the other architecture's build) is refused at stage time, so
 * it never reaches `current` and never needs a rollback.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** The architectures edge-agent is built for, as Node names them (`process.arch`). */
export type ReleaseArch = 'x64' | 'arm64';

/** e_machine values from the ELF specification (EM_X86_64, EM_AARCH64). */
const E_MACHINE: Record<ReleaseArch, number> = { x64: 62, arm64: 183 };

export type ElfCheck = { ok: true } | { ok: false; reason: 'not_elf' | 'wrong_arch'; message: string };

const HEADER_BYTES = 20;

export function checkElf(path: string, arch: ReleaseArch): ElfCheck {
  const header = Buffer.alloc(HEADER_BYTES);
  const fd = openSync(path, 'r');
  let read: number;
  try {
    read = readSync(fd, header, 0, HEADER_BYTES, 0);
  } finally {
    closeSync(fd);
  }
  if (read < HEADER_BYTES || header.readUInt32BE(0) !== 0x7f454c46)
    return { ok: false, reason: 'not_elf', message: `${path} is not an ELF executable (${read} header bytes, magic ${header.subarray(0, 4).toString('hex')})` };
  if (header[4] !== 2 || header[5] !== 1)
    return { ok: false, reason: 'wrong_arch', message: `${path} is not a 64-bit little-endian ELF (class ${header[4]}, data ${header[5]})` };
  const type = header.readUInt16LE(16);
  if (type !== 2 && type !== 3) return { ok: false, reason: 'not_elf', message: `${path} is an ELF file but not an executable (e_type ${type})` };
  const machine = header.readUInt16LE(18);
  if (machine !== E_MACHINE[arch]) {
    const named = Object.entries(E_MACHINE).find(([, m]) => m === machine)?.[0] ?? `e_machine ${machine}`;
    return { ok: false, reason: 'wrong_arch', message: `${path} is built for ${named}, this device runs ${arch}` };
  }
  return { ok: true };
}

/** This process's architecture as a release architecture; undefined on one edge-agent is not built for. */
export function hostArch(): ReleaseArch | undefined {
  return process.arch === 'x64' || process.arch === 'arm64' ? process.arch : undefined;
}
