import { after, before, describe } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialSource } from '../../drivers/sources/serial/index.ts';
import { checksum } from '../../drivers/sources/serial/nmea.ts';
import { sourceContract } from '../contract/source-contract.ts';
import { startPtyPair, type PtyPair } from '../helpers/socat.ts';

// The contract runs the driver on a real pty that a background writer keeps feeding with NMEA sentences, as
// a GPS receiver would. A serial line cannot be replayed, so there is no resume-without-gap check.
const dir = mkdtempSync(join(tmpdir(), 'edge-serial-contract-'));
const body = 'GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,';
const sentence = `$${body}*${checksum(body).toString(16).toUpperCase().padStart(2, '0')}\r\n`;
let pair: PtyPair | undefined;
let writer: NodeJS.Timeout | undefined;

describe('serial source', () => {
  before(async () => {
    pair = await startPtyPair(dir, 'contract');
    const feed = pair;
    writer = setInterval(() => void feed.write(sentence.repeat(5)).catch(() => {}), 10);
  });
  after(async () => {
    clearInterval(writer);
    await pair?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  sourceContract(serialSource, { options: { path: join(dir, 'contract-dev'), baud_rate: 115200, framing: { mode: 'nmea' } } });
});
