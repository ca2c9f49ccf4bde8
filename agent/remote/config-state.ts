/**
 * What the desired-config pipeline keeps on disk, in `<data_dir>/remote/` (0700): `committed.json`, the
 * layers last committed (their envelopes and decoded configs, and the local file's last good content), and
 * `pending.json`, written before an apply tears anything down and removed after its commit or rollback. A
 * `pending.json` found at start means the process died between apply and commit. Every write is atomic
 * (temp file, fsync, rename, directory fsync; 0600), so a kill -9 leaves the old file or the new one.
 */
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError } from '../errors.ts';
import type { LayerId } from './config-merge.ts';
import { makeDirs } from '../util/make-dirs.ts';
import { syncDirectory, writeFileAtomic } from '../util/atomic-file.ts';

/** A remote layer as committed. */
export interface LayerRecord {
  version: number;
  /** The envelope as received (its text): a repeat of the same version is told from a different one by it. */
  raw: string;
  /** The decoded document's config (a partial config). */
  config: unknown;
  signer?: { keyId: string; name: string };
  at: string;
}

/** A layer's highest version ever accepted, and its envelope text. */
export interface Floor {
  version: number;
  raw: string;
  /** Set when this version failed its health gate and was rolled back: why (`health:sink`, …). */
  rolled_back?: string;
}

export interface CommittedState {
  /** By layer id: `device`, `group:<name>`. */
  layers: Record<string, LayerRecord>;
  /** The local file's content at its last commit (after a SIGHUP reload), with its sha. */
  local?: { sha: string; config: unknown; at: string };
  /**
   * The remote layers as they were before the last commit of a remote layer (`layer` is the one it changed):
   * what `config.rollback` goes back to. One step only: a rollback clears it.
   */
  previous?: { layer: string; layers: Record<string, LayerRecord>; at: string };
  /**
   * By layer id, the highest version ever accepted and its envelope text. A rollback lowers the committed
   * version but never this: the newer document still retained on the broker is not applied again.
   */
  floors?: Record<string, Floor>;
}

export interface PendingState {
  layer: LayerId;
  version: number | undefined;
  started: string;
  state: CommittedState;
}

export class ConfigState {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'remote');
  }

  private ensureDir(): void {
    makeDirs(this.dir);
    chmodSync(this.dir, 0o700);
  }

  private read<T>(name: string): T | undefined {
    let text: string;
    try {
      text = readFileSync(join(this.dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new AgentError('CONFIG_UNREADABLE', `cannot read ${join(this.dir, name)}`, { cause: err });
    }
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new AgentError('CONFIG_UNREADABLE', `${join(this.dir, name)} is not JSON`, { cause });
    }
  }

  private write(name: string, value: unknown): void {
    this.ensureDir();
    writeFileAtomic(join(this.dir, name), JSON.stringify(value));
  }

  private syncDir(): void {
    syncDirectory(this.dir);
  }

  committed(): CommittedState {
    return this.read<CommittedState>('committed.json') ?? { layers: {} };
  }

  pending(): PendingState | undefined {
    return this.read<PendingState>('pending.json');
  }

  writePending(pending: PendingState): void {
    this.write('pending.json', pending);
  }

  /** The new state becomes the last known good, then the pending file goes: a kill in between commits it all the same. */
  commit(state: CommittedState): void {
    this.write('committed.json', state);
    this.clearPending();
  }

  clearPending(): void {
    try {
      rmSync(join(this.dir, 'pending.json'));
      this.syncDir();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
