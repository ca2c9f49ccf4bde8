import { after, before, describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modbusSource } from '../../drivers/sources/modbus/index.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { sourceContract } from '../contract/source-contract.ts';
import { type ModbusServer, pymodbusAvailable, startModbusServer } from '../helpers/modbus.ts';

// The contract polls a real Modbus TCP server (Debian's python3-pymodbus). Live register values have no
// cursor, so there is no resume-without-gap check.
const dir = mkdtempSync(join(tmpdir(), 'edge-modbus-contract-'));
const port = await freePort();
let server: ModbusServer | undefined;

if (!pymodbusAvailable()) {
  describe('modbus source', () =>
    it('needs Debian python3-pymodbus', (t) => t.skip('python3-pymodbus or python3-serial-asyncio is missing: .ci/run installs them')));
} else {
  describe('modbus source', () => {
    before(async () => {
      server = await startModbusServer(dir, { 1: { holding: [10, 20, 30, 40], coils: [true] } }, { tcp: port });
    });
    after(async () => {
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    sourceContract(modbusSource, {
      options: {
        transport: { type: 'tcp', host: '127.0.0.1', port },
        points: [
          { name: 'level', address: 0, count: 4 },
          { name: 'pump', table: 'coil', address: 0 },
        ],
      },
    });
  });
}
