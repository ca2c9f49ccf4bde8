import { rmSync } from 'node:fs';

/** The download's side files (`.list`, `.map`) once the part file was staged or given up. */
export function removeDownloadFiles(partPath: string): void {
  for (const suffix of ['.list', '.map']) rmSync(`${partPath}${suffix}`, { force: true });
}
