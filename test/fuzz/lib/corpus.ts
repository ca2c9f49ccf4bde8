/**
 * The saved corpus: test/fuzz/corpus/<target>/ holds seed inputs and every input that once broke a property
 * (named by what it found). Each file is one input in the target's own file form (bytes for envelopes and
 * payloads, YAML text for configs, a stream or a `.case` for the serial framers).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CORPUS_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', 'corpus');

export interface CorpusEntry {
  /** File name inside the target's folder, e.g. `found-ref-stack-overflow.bin`. */
  name: string;
  bytes: Buffer;
}

export function readCorpus(target: string): CorpusEntry[] {
  const dir = join(CORPUS_ROOT, target);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => !n.startsWith('.') && n !== 'README.md')
    .sort()
    .map((name) => ({ name, bytes: readFileSync(join(dir, name)) }));
}

/** Writes one entry and returns its path. `name` must already carry the target's extension. */
export function saveCorpusEntry(target: string, name: string, bytes: Uint8Array): string {
  const dir = join(CORPUS_ROOT, target);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}
