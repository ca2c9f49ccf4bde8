import { powerCutUnavailable } from '../../scripts/chaos/fuse-mount.ts';

/**
 * node:test options for a test that needs the power-cut file system: skipped, with the reason printed, where
 * FUSE cannot run; under CI=true never skipped, so a CI machine without FUSE fails instead of passing quietly.
 */
export function powerCutTestOptions(): { skip?: string } {
  const reason = powerCutUnavailable();
  if (reason === undefined || process.env.CI === 'true') return {};
  process.stdout.write(`# power-cut tests skipped: ${reason}\n`);
  return { skip: reason };
}

/** First step of such a test: throws the reason FUSE cannot run (reached only under CI or when available). */
export function requirePowerCut(): void {
  const reason = powerCutUnavailable();
  if (reason !== undefined) throw new Error(`the power-cut tests must run here (CI=${process.env.CI ?? ''}) but cannot: ${reason}`);
}
