/**
 * Debian's Chromium as the status page's test and benchmark drive it (through playwright-core): headless,
 * and without the background networking that this machine's closed network refuses many times a start.
 */
export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
