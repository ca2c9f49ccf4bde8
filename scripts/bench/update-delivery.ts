/**
 * Self-update delivery figures (docs/benchmarks.md, "Self-update (delivery)"):
 *
 * - size of each executable given, raw and zstd (node:zlib, streamed; --zstd-levels 3,19);
 * - what a device running OLD must fetch to get NEW: content-defined chunks of NEW that OLD lacks, the chunk
 *   list, and the messages' own bytes (frame headers, requests), against the whole executable;
 * - the download itself on loopback: the real chunk server and the device's real Download class over a
 *   Mosquitto of this script's own, once with nothing to copy (a full update) and once copying from OLD.
 *
 *   node scripts/bench/update-delivery.ts --new dist/edge-agent-linux-x64 [--old OLD] [--sizes FILE,FILE…] [--zstd-levels 3,19] [--in-flight 8]
 *
 * An application-code-only change: build, keep a copy, change one line in agent/, build again, and give the
 * copy as --old (docs/benchmarks.md has the exact commands).
 */
import { createReadStream, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, createZstdCompress } from 'node:zlib';
import mqtt from 'mqtt';
import { silentLogger } from '../../agent/log.ts';
import { cdcOfFile } from '../../agent/update/cdc.ts';
import { prepareRelease } from '../../agent/update/manifest-sign.ts';
import { manifestId } from '../../agent/update/manifest.ts';
import { Download } from '../../agent/update/transfer-download.ts';
import { correlationOf, decodeFrame, FRAME_HEADER_BYTES } from '../../agent/update/transfer-protocol.ts';
import { ChunkServer } from '../../agent/update/transfer-server.ts';
import { startMosquitto } from '../lib/mosquitto.ts';
import { parseArgs } from './proc.ts';

const args = parseArgs(process.argv.slice(2));
const newPath = String(args.get('new') ?? 'dist/edge-agent-linux-x64');
const oldPath = args.get('old');
const inFlight = Number(args.get('in-flight') ?? 8);
const levels = String(args.get('zstd-levels') ?? '3')
  .split(',')
  .map(Number);
const MB = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

async function zstdBytes(path: string, level: number): Promise<number> {
  let bytes = 0;
  const z = createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: level } });
  z.on('data', (d: Buffer) => (bytes += d.length));
  const done = new Promise((resolve) => z.on('end', resolve));
  createReadStream(path).pipe(z);
  await done;
  return bytes;
}

async function sizes(path: string): Promise<void> {
  const raw = statSync(path).size;
  const parts = [`raw ${MB(raw)}`];
  for (const level of levels) {
    const z = await zstdBytes(path, level);
    parts.push(`zstd-${level} ${MB(z)} (${((100 * z) / raw).toFixed(0)} %)`);
  }
  console.log(`${path}: ${parts.join(', ')}`);
}

for (const path of String(args.get('sizes') ?? newPath)
  .split(',')
  .filter(Boolean))
  await sizes(path);

const started = performance.now();
const release = await prepareRelease({ path: newPath, version: 'bench', release: 1, arch: 'x64', target: { device: 'bench' }, validMs: 3_600_000 });
console.log(
  `chunking ${MB(release.document.size)}: ${release.chunks.length} chunks (mean ${(release.document.size / release.chunks.length / 1024).toFixed(1)} KiB), list ${release.list.length} bytes, ${((performance.now() - started) / 1000).toFixed(1)} s`,
);
const id = manifestId(Buffer.from(JSON.stringify(release.document)).toString('base64'));

/** Bytes a device holding `local` would have fetched, by the numbers (chunks NEW has that `local` lacks). */
async function planned(local: string | undefined): Promise<{ chunks: number; bytes: number }> {
  const have = new Set(local ? (await cdcOfFile(local)).map((c) => c.sha256.toString('hex')) : []);
  const seen = new Set<string>();
  let chunks = 0;
  let bytes = 0;
  for (const c of release.chunks) {
    const key = c.sha256.toString('hex');
    if (have.has(key) || seen.has(key)) continue;
    seen.add(key);
    chunks++;
    bytes += c.length;
  }
  return { chunks, bytes };
}

const broker = await startMosquitto();
const dir = mkdtempSync(join(tmpdir(), 'edge-update-bench-'));
const empty = join(dir, 'empty');
writeFileSync(empty, '');

async function download(label: string, local: string): Promise<void> {
  const plan = await planned(local === empty ? undefined : local);
  const server = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `bench-server-${label}` });
  const device = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `bench-device-${label}` });
  const chunkServer = new ChunkServer({
    exePath: newPath,
    list: release.list,
    chunks: release.chunks,
    manifestId: id,
    prefix: 'bench',
    publish: async (topic, payload, correlationData) => {
      await server.publishAsync(topic, payload, { qos: 1, ...(correlationData ? { properties: { correlationData } } : {}) });
    },
  });
  let requestBytes = 0;
  let frameBytes = 0;
  server.on('message', (topic, payload, packet) => chunkServer.handle(topic, payload, packet.properties?.responseTopic, packet.properties?.correlationData));
  await server.subscribeAsync(chunkServer.filter, { qos: 1 });
  await device.subscribeAsync('bench/bench/update/chunk', { qos: 1 });
  const d = new Download({
    manifest: release.document,
    id,
    partPath: join(dir, `${label.replace(/[^a-z0-9]+/gi, '-')}.part`),
    localSource: local,
    inFlight,
    retryMs: 10_000,
    request: (object, chunks) => {
      const payload = JSON.stringify({ manifest: id, object, chunks });
      requestBytes += payload.length;
      void device.publishAsync('bench/bench/update/req', payload, {
        qos: 1,
        properties: { responseTopic: 'bench/bench/update/chunk', correlationData: correlationOf(id) },
      });
    },
    log: silentLogger,
  });
  device.on('message', (_topic, payload) => {
    frameBytes += payload.length;
    const frame = decodeFrame(payload);
    if (frame) d.receive(frame);
  });
  const t0 = performance.now();
  const ticker = setInterval(() => process.stderr.write(`  ${label}: ${MB(d.stats.have)} of ${MB(d.stats.total)}\n`), 5_000);
  await d.run().finally(() => clearInterval(ticker));
  const seconds = (performance.now() - t0) / 1000;
  d.close();
  const served = chunkServer.served.get('bench');
  const wire = frameBytes + requestBytes;
  console.log(
    `${label}: fetched ${MB(d.stats.fetched)} in ${served?.chunks ?? 0} chunks (planned ${MB(plan.bytes)} in ${plan.chunks}), copied ${MB(d.stats.copied)}; on the wire ${MB(wire)} = ${((100 * wire) / release.document.size).toFixed(1)} % of the executable (chunk list ${release.list.length} B, frame headers ${(served?.chunks ?? 0) * FRAME_HEADER_BYTES} B, requests ${requestBytes} B); ${seconds.toFixed(1)} s on loopback (${MB(d.stats.fetched / seconds)}/s fetched), whole file verified`,
  );
  chunkServer.close();
  await server.endAsync();
  await device.endAsync();
}

try {
  await download('full update (nothing to copy)', empty);
  if (oldPath) await download(`from ${oldPath}`, oldPath);
} finally {
  await broker.stop();
}
