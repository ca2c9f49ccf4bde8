/**
 * Many gateways in one process, for the centre's scale tests and benchmarks (docs/centre.md): each simulated
 * device has its own X25519 key pair, and its batches are sealed with the project's own envelope code, exactly
 * as a gateway's sender seals them, then published by the caller. Records are realistic: a timestamp each,
 * a sensor id out of many, a noisy float, and an `id` naming the record (device/seq/index) so a test can
 * compare identities at the other end.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { compress, encodeRecords } from '../../agent/envelope/codec.ts';
import { seal } from '../../agent/envelope/seal.ts';
import { deviceSendKey, type KeyExchange, type KeyPair, keyId, writeKeyPair } from '../../agent/keys/keys.ts';

export interface SimulatedDevice {
  id: string;
  pair: KeyPair;
  sendKey: Uint8Array;
  publicKeyFile: string;
}

export interface SimulatedFleet {
  /** The centre's private key file (`keys/centre.key` under the directory). */
  centreKeyFile: string;
  devices: SimulatedDevice[];
  /** The `receiver.devices` list as YAML lines at `indent` spaces. */
  devicesYaml(indent?: number): string;
  /** Batch `seq` of device `index` with `records` records, sealed. */
  seal(index: number, seq: number, records: number): Buffer;
  /** The record ids batch `seq` of device `index` carries. */
  ids(index: number, seq: number, records: number): string[];
}

const SENSORS = 400;

export function simulateFleet(kx: KeyExchange, dir: string, count: number, options: { prefix?: string; stream?: string; epoch?: number } = {}): SimulatedFleet {
  const prefix = options.prefix ?? 'gw';
  const stream = options.stream ?? 'telemetry';
  const epoch = new Uint8Array(8).fill(options.epoch ?? 7);
  const centre = kx.keyPair();
  const { privatePath } = writeKeyPair(kx, join(dir, 'keys', 'centre'), centre);
  const devices: SimulatedDevice[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${String(i).padStart(4, '0')}`;
    const pair = kx.keyPair();
    const { publicPath } = writeKeyPair(kx, join(dir, 'keys', id), pair);
    devices.push({ id, pair, sendKey: deviceSendKey(kx, pair, centre.publicKey), publicKeyFile: publicPath });
  }
  const centreKeyId = keyId(centre.publicKey);
  const ids = (index: number, seq: number, records: number) => Array.from({ length: records }, (_, j) => `${devices[index]!.id}/${seq}/${j}`);
  return {
    centreKeyFile: privatePath,
    devices,
    devicesYaml: (indent = 4) => devices.map((d) => `${' '.repeat(indent)}- { id: ${d.id}, public_keys: [${d.publicKeyFile}] }`).join('\n'),
    ids,
    seal(index, seq, records) {
      const device = devices[index]!;
      const now = Date.now();
      const body = ids(index, seq, records).map((id, j) => ({
        ts: now - (records - j) * 1000,
        id,
        sensor: `sensor-${(index * 31 + j * 7) % SENSORS}`,
        value: Math.round((20 + Math.sin(seq + j) * 5 + Math.random()) * 1e6) / 1e6,
        status: j % 50 === 0 ? 'warn' : 'ok',
      }));
      return Buffer.from(
        seal(
          {
            device: device.id,
            stream,
            epoch,
            seq,
            count: records,
            created: now,
            compression: 'deflate',
            deviceKeyId: keyId(device.pair.publicKey),
            centreKeyId,
            nonce: new Uint8Array(randomBytes(24)),
          },
          compress(encodeRecords(body), { compression: 'deflate', level: undefined }),
          device.sendKey,
        ),
      );
    },
  };
}
