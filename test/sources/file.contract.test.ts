import { after, before, describe } from 'node:test';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSource } from '../../drivers/sources/file/index.ts';
import { sourceContract } from '../contract/source-contract.ts';

// The contract runs the driver on a real file that a background writer keeps appending JSON lines to, as an
// instrument's logger would. The resume check proves a stop and start neither skips nor repeats a line.
const dir = mkdtempSync(join(tmpdir(), 'edge-file-contract-'));
const path = join(dir, 'instrument.log');
let writer: NodeJS.Timeout | undefined;
let next = 0;

describe('file source', () => {
  before(() => {
    writer = setInterval(() => {
      let lines = '';
      for (let i = 0; i < 20; i++) lines += `${JSON.stringify({ id: next++, temp: 20 + Math.random() })}\n`;
      appendFileSync(path, lines);
    }, 10);
  });
  after(() => {
    clearInterval(writer);
    rmSync(dir, { recursive: true, force: true });
  });

  sourceContract(fileSource, {
    options: { paths: [path], format: { type: 'json_lines' }, start_at: 'beginning', poll_interval: '20ms' },
    identity: (r) => r.id as number,
  });
});
