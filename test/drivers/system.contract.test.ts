import { describe } from 'node:test';
import { systemSource } from '../../drivers/sources/system/index.ts';
import { sourceContract } from '../contract/source-contract.ts';

describe('system source', () => {
  // The real /proc and /sys of this machine: the contract holds on a real Linux, not only on fixtures.
  sourceContract(systemSource, { options: {} });
});
