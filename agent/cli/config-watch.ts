/**
 * `fleet.watch_local_file`: a change of the config file reloads it, as SIGHUP does. The directory is watched,
 * not the file: an editor that saves by writing a new file and renaming it over the old one replaces the
 * inode a file watch would follow, while the directory sees the new entry under the same name. Events come
 * in bursts (truncate, write, rename), so the reload waits until none came for `debounceMs`.
 */
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';

export interface ConfigWatch {
  close(): void;
}

export function watchConfigFile(path: string, onChange: () => void, log: Logger, debounceMs = 300): ConfigWatch {
  const file = resolve(path);
  const name = basename(file);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    // Not persistent: the watch alone never keeps the process alive.
    watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      // Some platforms do not name the entry: then any change in the directory may be ours.
      if (changed !== null && changed !== name) return;
      clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    });
    watcher.on('error', (err) => log.warn({ err: describeError(err), file }, 'watching the config file failed; SIGHUP still reloads it'));
    log.info({ file }, 'watching the config file: a change reloads it');
  } catch (err) {
    log.warn({ err: describeError(err), file }, 'cannot watch the config file; SIGHUP still reloads it');
  }
  return {
    close() {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
