/**
 * What the HTTP endpoint costs the agent (issue 15; docs/benchmarks.md "Observability"): the agent runs a
 * realistic synthetic source (a timestamp per record, noisy floats, 400 sensor ids) into the embedded broker
 * and its own receiver, once with `http.enabled: false` and once with it on, /metrics scraped every 5 s and
 * the status page open in a headless Chromium (which polls it). Each variant runs `--seconds` after a
 * `--warmup`; RSS (VmRSS, mean of 1 s samples) and CPU (user + system over the window, % of one core) are
 * read from /proc. The figure is the difference. Variants alternate for `--rounds` (noise on a shared
 * machine is of the order of the goal: report every round). Goal: ≤ 2 MB and ≤ 1 % of a core.
 *
 *   node scripts/bench/observability.ts [--rate 100] [--seconds 60] [--warmup 15] [--rounds 1] [--no-page] [--no-scrape] [--executable PATH]
 *
 * Runs the source tree under the executable's heap caps (32 MB old space, 1 MB semi-space), or with
 * `--executable dist/edge-agent-linux-x64` the shipped executable (its caps are built in).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { numberArg, parseArgs, readCpuSeconds, readMemory } from './proc.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../lib/chromium.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MiB = 1024 * 1024;
const args = parseArgs(process.argv.slice(2));
const rate = numberArg(args, 'rate', 100);
const seconds = numberArg(args, 'seconds', 60);
const warmup = numberArg(args, 'warmup', 15);
const rounds = numberArg(args, 'rounds', 1);
const page = !args.has('no-page');
/** --no-scrape --no-page: the endpoint on and idle, to tell its fixed cost from what scraping adds. */
const scrape = !args.has('no-scrape');
/** The shipped executable (`npm run build`) instead of the source tree. */
const executable = args.get('executable');
const SCRAPE_MS = 5000;

interface Figures {
  rssMiB: number;
  cpuPercent: number;
  scrapes: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function variant(http: boolean): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-agent-observability-bench-'));
  writeFileSync(
    join(dir, 'run.yaml'),
    `device: { id: bench-gw }
data_dir: data
log: { level: warn }
keys: { device_private: keys/device.key, centre_public: keys/centre.pub, generate_if_missing: true }
sources:
  - { type: synthetic, name: load, rate: ${rate}, batch: ${Math.max(1, Math.round(rate / 10))}, shape: realistic }
sink: { type: mqtt, url: embedded, protocol_version: 4 }
broker: { embedded: true }
receiver:
  enabled: true
  private_key: keys/centre.key
  devices: [{ id: bench-gw, public_keys: [keys/device.pub] }]
  output: records.jsonl
http: { enabled: ${http}, listen: "127.0.0.1:0" }
`,
  );
  const argv = executable
    ? [resolve(executable), 'run', '--config', 'run.yaml']
    : [process.execPath, '--max-old-space-size=32', '--max-semi-space-size=1', join(ROOT, 'agent/cli/main.ts'), 'run', '--config', 'run.yaml'];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: dir, stdio: ['ignore', 'ignore', 'ignore'] });
  const pid = child.pid!;
  const alive = () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the agent exited (${child.exitCode ?? child.signalCode})`);
  };
  let browser: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  let scrapes = 0;
  let scraper: NodeJS.Timeout | undefined;
  try {
    if (http) {
      const urlFile = join(dir, 'data', 'http.url');
      for (let i = 0; !existsSync(urlFile); i++) {
        alive();
        if (i > 600) throw new Error('the endpoint did not start');
        await sleep(50);
      }
      const url = readFileSync(urlFile, 'utf8').trim();
      if (scrape)
        scraper = setInterval(() => {
          fetch(`${url}/metrics`)
            .then((r) => r.text())
            .then(() => scrapes++)
            .catch(() => {});
        }, SCRAPE_MS);
      if (page) {
        browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'edge-bench-chromium-')), {
          executablePath: CHROMIUM,
          headless: true,
          args: [...CHROMIUM_ARGS],
        });
        await (browser.pages()[0] ?? (await browser.newPage())).goto(`${url}/`);
      }
    }
    await sleep(warmup * 1000);
    alive();
    const cpu0 = readCpuSeconds(pid);
    const t0 = performance.now();
    let rssSum = 0;
    for (let s = 0; s < seconds; s++) {
      await sleep(1000);
      alive();
      rssSum += readMemory(pid).rss;
    }
    const cpu = readCpuSeconds(pid) - cpu0;
    const wall = (performance.now() - t0) / 1000;
    return { rssMiB: rssSum / seconds / MiB, cpuPercent: (cpu / wall) * 100, scrapes };
  } finally {
    clearInterval(scraper);
    await browser?.close();
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.on('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: { round: number; off: Figures; on: Figures }[] = [];
for (let round = 1; round <= rounds; round++) {
  const off = await variant(false);
  const on = await variant(true);
  rows.push({ round, off, on });
  process.stdout.write(
    `round ${round}: off RSS ${off.rssMiB.toFixed(1)} MiB, CPU ${off.cpuPercent.toFixed(2)} %; on (${scrape ? 'scrape every 5 s' : 'idle'}${page ? ', page open' : ''}) RSS ${on.rssMiB.toFixed(1)} MiB, CPU ${on.cpuPercent.toFixed(2)} %, ${on.scrapes} scrapes → added ${(on.rssMiB - off.rssMiB).toFixed(1)} MiB, ${(on.cpuPercent - off.cpuPercent).toFixed(2)} % of a core\n`,
  );
}
const mean = (f: (r: (typeof rows)[number]) => number) => rows.reduce((s, r) => s + f(r), 0) / rows.length;
process.stdout.write(
  `added by the endpoint (mean of ${rows.length} round${rows.length === 1 ? '' : 's'}, ${rate} rec/s, ${seconds} s each): RSS ${mean((r) => r.on.rssMiB - r.off.rssMiB).toFixed(1)} MiB (goal ≤ 2), CPU ${mean((r) => r.on.cpuPercent - r.off.cpuPercent).toFixed(2)} % of a core (goal ≤ 1)\n`,
);
