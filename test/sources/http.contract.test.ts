import { after, before, describe } from 'node:test';
import { createServer } from 'node:net';
import { httpSource } from '../../drivers/sources/http/index.ts';
import { sourceContract } from '../contract/source-contract.ts';

// The contract runs the endpoint on a free loopback port that a background client keeps posting JSON
// arrays to, as a site application would. Pushed data cannot be replayed, so there is no resume check.
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

const port = await freePort();
let poster: NodeJS.Timeout | undefined;
let n = 0;

describe('http source', () => {
  before(() => {
    poster = setInterval(() => {
      const body = JSON.stringify(Array.from({ length: 10 }, () => ({ id: n++, value: Math.random() })));
      fetch(`http://127.0.0.1:${port}/ingest/contract-http`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).catch(() => {});
    }, 10);
  });
  after(() => clearInterval(poster));

  sourceContract(httpSource, { options: { port, auth: 'none' } });
});
