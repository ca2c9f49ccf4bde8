/**
 * Where the HTTP endpoint's memory goes, inside one running agent (docs/benchmarks.md "Observability"): the
 * agent of scripts/bench/observability.ts (realistic synthetic source at 100 rec/s, embedded broker) runs
 * in this process; after a warm-up, each step is read after a full garbage collection (RSS and V8 heap,
 * the median of five readings a second apart): importing the endpoint's modules, listening, then serving
 * every route 20 times. Each line says whether Node's web fetch classes (`Request`, `Response`: undici) are
 * loaded: the endpoint and the http source used to load them through their framework's adapter. `--web`
 * loads them first (as that adapter did), to measure what they cost in the same way.
 *
 *   node --expose-gc --max-old-space-size=32 --max-semi-space-size=1 scripts/bench/observability-import.ts [--web] [--warmup 15]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { loadConfigFile } from '../../agent/app.ts';
import { silentLogger } from '../../agent/log.ts';
import { startAgent } from '../../agent/runtime/agent.ts';
import { numberArg, parseArgs } from './proc.ts';

const args = parseArgs(process.argv.slice(2));
const warmup = numberArg(args, 'warmup', 15);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether Node's web fetch classes (Request, Response: undici, loaded on first use) are loaded yet. */
const webClasses = () => (process as unknown as { moduleLoadList: string[] }).moduleLoadList.some((m) => m.includes('undici'));

async function reading(): Promise<{ rss: number; heap: number; web: boolean }> {
  const rss: number[] = [];
  const heap: number[] = [];
  for (let i = 0; i < 5; i++) {
    await sleep(1000);
    gc!();
    const m = process.memoryUsage();
    rss.push(m.rss);
    heap.push(m.heapUsed);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[2]! / MiB;
  return { rss: median(rss), heap: median(heap), web: webClasses() };
}

const dir = mkdtempSync(join(tmpdir(), 'edge-agent-observability-import-'));
writeFileSync(
  join(dir, 'run.yaml'),
  `device: { id: bench-gw }
data_dir: data
log: { level: warn }
keys: { device_private: keys/device.key, centre_public: keys/centre.pub, generate_if_missing: true }
sources:
  - { type: synthetic, name: load, rate: 100, batch: 10, shape: realistic }
sink: { type: mqtt, url: embedded, protocol_version: 4 }
broker: { embedded: true }
http: { enabled: true, listen: "127.0.0.1:0" }
`,
);

const agent = await startAgent(loadConfigFile(join(dir, 'run.yaml')), silentLogger);
await sleep(warmup * 1000);
const steps: [string, { rss: number; heap: number; web: boolean }][] = [['agent running, no endpoint', await reading()]];
if (args.has('web')) {
  // What the framework's adapter read at its import: the getters of these globals load undici.
  void [globalThis.Request, globalThis.Response, globalThis.Headers];
  steps.push(['+ the web fetch classes (what the adapter loaded)', await reading()]);
}
const { startHttp } = await import('../../agent/observe/server.ts');
steps.push(["+ import the endpoint's modules", await reading()]);
const endpoint = await startHttp(agent, silentLogger, { lastExit: 'first start' });
steps.push(['+ listening', await reading()]);
const paths = [
  '/metrics',
  '/livez',
  '/readyz',
  '/',
  '/api/status',
  '/api/history',
  '/assets/uplot.js',
  '/assets/uplot.css',
  '/assets/page.js',
  '/assets/page.css',
];
// node:http, not fetch: fetch would load the web classes into this process and count them against the endpoint.
// Required, not imported: an ESM import of node:http reads every export, and its WebSocket getter loads undici.
const { request } = createRequire(import.meta.url)('node:http') as typeof import('node:http');
const get = (path: string) =>
  new Promise<void>((resolve, reject) => {
    request(`${endpoint.url}${path}`, (res) => res.resume().once('end', resolve).once('error', reject))
      .once('error', reject)
      .end();
  });
for (let i = 0; i < 20; i++) for (const p of paths) await get(p);
steps.push(['+ every route served 20 times', await reading()]);
const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
steps.forEach(([what, m], i) => {
  const before = steps[i - 1]?.[1];
  const delta = (k: 'rss' | 'heap') => (before ? ` (${signed(m[k] - before[k])})` : '');
  process.stdout.write(
    `${what.padEnd(58)} RSS ${m.rss.toFixed(1)} MiB${delta('rss')}, heap ${m.heap.toFixed(1)} MiB${delta('heap')}; web classes ${m.web ? 'loaded' : 'not loaded'}\n`,
  );
});
await endpoint.close();
await agent.stop();
rmSync(dir, { recursive: true, force: true });
