import { describe } from 'node:test';
import { syntheticSource } from '../../drivers/sources/synthetic/index.ts';
import { sourceContract } from '../contract/source-contract.ts';

describe('synthetic source', () => {
  sourceContract(syntheticSource, { options: { rate: 5000, batch: 10 }, identity: (r) => r.n as number });
});
