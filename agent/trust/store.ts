/**
 * Where a device keeps what it accepted (the newest root, the newest revocation list): small named
 * documents, written atomically so a power cut leaves the old one or the new one, never half of either.
 */
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError } from '../errors.ts';
import { makeDirs } from '../util/make-dirs.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';

export interface TrustStore {
  load(name: string): string | undefined;
  save(name: string, value: string): void;
}

/** Documents here are a few kB; anything far larger is not ours and is not read into memory. */
const MAX_STORED_BYTES = 1024 * 1024;
const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** `<dir>/<name>.json`, files 0600 in a 0700 directory (the spec's `<data_dir>/remote/`). */
export class FileTrustStore implements TrustStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  load(name: string): string | undefined {
    const path = this.pathOf(name);
    try {
      const size = statSync(path).size;
      if (size > MAX_STORED_BYTES) throw new AgentError('TRUST_STORE_FAILED', `${path} is ${size} bytes, more than a trust document can be`);
      return readFileSync(path, 'utf8');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (cause instanceof AgentError) throw cause;
      throw new AgentError('TRUST_STORE_FAILED', `cannot read ${path}`, { cause });
    }
  }

  save(name: string, value: string): void {
    const path = this.pathOf(name);
    try {
      makeDirs(this.dir);
      chmodSync(this.dir, 0o700);
      writeFileAtomic(path, value);
    } catch (cause) {
      throw new AgentError('TRUST_STORE_FAILED', `cannot write ${path}`, { cause });
    }
  }

  private pathOf(name: string): string {
    if (!NAME.test(name)) throw new AgentError('TRUST_STORE_FAILED', `${JSON.stringify(name)} is not a trust document name`);
    return join(this.dir, `${name}.json`);
  }
}

/** For tests and for commands that check an envelope without a device's state. */
export class MemoryTrustStore implements TrustStore {
  readonly values = new Map<string, string>();

  load(name: string): string | undefined {
    return this.values.get(name);
  }

  save(name: string, value: string): void {
    this.values.set(name, value);
  }
}
