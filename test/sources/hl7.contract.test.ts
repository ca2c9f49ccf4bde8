import { after, before, describe } from 'node:test';
import { connect, type Socket } from 'node:net';
import { hl7Source } from '../../drivers/sources/hl7/index.ts';
import { mllpFrame } from '../../drivers/sources/hl7/mllp.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { sourceContract } from '../contract/source-contract.ts';
import { oruMessage } from '../helpers/hl7.ts';

// The contract runs the listener on a fixed free port while a background sender (this test's own MLLP client)
// keeps connecting and sending results, as a lab system retrying its interface would. A sender cannot be
// replayed from a cursor, so there is no resume-without-gap check here: test/sources/hl7.test.ts proves that
// with the real mllp_send and SIGKILLs.
const port = await freePort();
let sent = 0;
let socket: Socket | undefined;
let timer: NodeJS.Timeout | undefined;

function pump(): void {
  if (socket && !socket.destroyed) {
    socket.write(mllpFrame(Buffer.from(oruMessage({ controlId: `C${sent++}`, observations: 2 }))));
    return;
  }
  socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => socket?.destroy());
  socket.on('data', () => {});
}

describe('hl7 source', () => {
  before(() => {
    timer = setInterval(pump, 20);
  });
  after(() => {
    clearInterval(timer);
    socket?.destroy();
  });
  sourceContract(hl7Source, { options: { listen: `127.0.0.1:${port}` } });
});
