import { join } from 'node:path';
import type { SensorProblems } from './problems.ts';
import { exists, listDirectory, parseNumber, readAttribute, type SysfsIo } from './sysfs.ts';

/**
 * The attributes of one device directory during one poll. Every read that fails is classified and counted
 * here, so the subsystem readers only say which files they need: a missing required file, a value that is
 * not a number and a failed read each skip that reading; a directory that went away mid-poll is counted once
 * as a vanished device and every later read of it is skipped quietly.
 */
export class DeviceFiles {
  readonly dir: string;
  readonly io: SysfsIo;
  readonly problems: SensorProblems;
  private goneCheck: Promise<boolean> | undefined;
  private gone = false;
  private listing: Promise<string[] | undefined> | undefined;

  constructor(dir: string, io: SysfsIo, problems: SensorProblems) {
    this.dir = dir;
    this.io = io;
    this.problems = problems;
  }

  get vanished(): boolean {
    return this.gone;
  }

  /** The directory's entries, listed once per poll however many readers ask. */
  list(): Promise<string[] | undefined> {
    this.listing ??= listDirectory(this.io, this.dir).then(async (names) => {
      if (names === undefined) await this.isGone();
      return names;
    });
    return this.listing;
  }

  /** The text of an attribute. Optional attributes (labels, offsets) that are absent are not a problem. */
  async text(name: string, required: boolean): Promise<string | undefined> {
    if (this.gone) return undefined;
    const path = join(this.dir, name);
    const outcome = await readAttribute(this.io, path);
    if (outcome.ok) return outcome.text;
    if (outcome.missing) {
      if (await this.isGone()) return undefined;
      if (required) this.problems.report('missing_file', path);
    } else this.problems.report('read_error', path, outcome.code);
    return undefined;
  }

  async number(name: string, required: boolean): Promise<number | undefined> {
    const text = await this.text(name, required);
    if (text === undefined) return undefined;
    const value = parseNumber(text);
    if (value === undefined) this.problems.report('unreadable_value', join(this.dir, name), JSON.stringify(text.slice(0, 40)));
    return value;
  }

  /** A value the caller parsed itself and found wrong (a malformed w1_slave, say). */
  unreadable(name: string, text: string): void {
    this.problems.report('unreadable_value', join(this.dir, name), JSON.stringify(text.slice(0, 80)));
  }

  badCrc(name: string, text: string): void {
    this.problems.report('bad_crc', join(this.dir, name), JSON.stringify(text.slice(0, 80)));
  }

  /** Concurrent failed reads of one device share one check, so a vanished device is counted once. */
  private async isGone(): Promise<boolean> {
    if (this.gone) return true;
    this.goneCheck ??= exists(this.io, this.dir).then((present) => {
      this.goneCheck = undefined;
      if (!present && !this.gone) {
        this.gone = true;
        this.problems.report('device_vanished', this.dir);
      }
      return !present;
    });
    return this.goneCheck;
  }
}
