import { after, describe } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sensorsSource } from '../../drivers/sources/sensors/index.ts';
import { sourceContract } from '../contract/source-contract.ts';
import { GATEWAY, writeTree } from '../fixtures/sysfs/tree.ts';

// The contract's options are fixed when the suite is declared, so the fixture tree is built right here.
const root = mkdtempSync(join(tmpdir(), 'edge-agent-sensors-contract-'));
writeTree(root, GATEWAY);
after(() => rmSync(root, { recursive: true, force: true }));

describe('sensors source', () => {
  sourceContract(sensorsSource, { options: { sys_root: root } });
});
