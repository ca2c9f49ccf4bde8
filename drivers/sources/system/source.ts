import type { AgentRecord, PolledSource, SourceContext } from '../../../agent/sdk/index.ts';
import type { Options } from './options.ts';
import { diskUsage, join, listDir, parseCpuTimes, parseMeminfo, parseNetDev, parseNumber, readText } from './read.ts';

/**
 * Real readings of this Linux machine: CPU use (since the previous poll), load, memory, disk usage, network
 * counters, thermal zones and hwmon temperatures. One record per reading, `metric` naming its kind. A file
 * that is missing or unreadable skips that reading and is counted, never fails the poll.
 */
export class SystemSource implements PolledSource {
  private lastCpu: { busy: number; total: number; iowait: number } | undefined;

  private readonly config: Options;

  constructor(config: Options) {
    this.config = config;
  }

  async gather(ctx: SourceContext): Promise<void> {
    const want = new Set(this.config.include);
    const records: AgentRecord[] = [];
    const ts = Date.now();
    const missing = (what: string) => ctx.counters.add(`unreadable_${what}`);
    const proc = this.config.proc_root;
    const sys = this.config.sys_root;

    if (want.has('cpu')) {
      const times = parseCpuTimes((await readText(join(proc, 'stat'))) ?? '');
      if (!times) missing('cpu');
      else {
        const prev = this.lastCpu;
        this.lastCpu = times;
        const total = prev ? times.total - prev.total : times.total;
        if (total > 0) {
          const busy = prev ? times.busy - prev.busy : times.busy;
          const iowait = prev ? times.iowait - prev.iowait : times.iowait;
          records.push({ ts, metric: 'cpu', usage_pct: round((100 * busy) / total), iowait_pct: round((100 * iowait) / total) });
        }
      }
    }
    if (want.has('load')) {
      const f = (await readText(join(proc, 'loadavg')))?.trim().split(/\s+/).map(Number);
      if (!f || f.length < 3 || f.slice(0, 3).some((v) => !Number.isFinite(v))) missing('load');
      else records.push({ ts, metric: 'load', load1: f[0], load5: f[1], load15: f[2] });
    }
    if (want.has('memory')) {
      const m = parseMeminfo((await readText(join(proc, 'meminfo'))) ?? '');
      if (m.MemTotal === undefined) missing('memory');
      else
        records.push({
          ts,
          metric: 'memory',
          total: m.MemTotal,
          available: m.MemAvailable ?? m.MemFree,
          swap_total: m.SwapTotal ?? 0,
          swap_free: m.SwapFree ?? 0,
        });
    }
    if (want.has('disk')) {
      for (const mount of this.config.mounts) {
        const d = await diskUsage(mount);
        if (!d) missing('disk');
        else records.push({ ts, metric: 'disk', mount, ...d });
      }
    }
    if (want.has('network')) {
      const text = await readText(join(proc, 'net', 'dev'));
      if (text === undefined) missing('network');
      else for (const n of parseNetDev(text)) records.push({ ts, metric: 'network', ...n });
    }
    if (want.has('thermal')) {
      const base = join(sys, 'class', 'thermal');
      for (const zone of (await listDir(base)).filter((d) => d.startsWith('thermal_zone'))) {
        const milli = parseNumber(await readText(join(base, zone, 'temp')));
        if (milli === undefined) missing('thermal');
        else
          records.push({
            ts,
            metric: 'temperature',
            source: 'thermal',
            sensor: (await readText(join(base, zone, 'type')))?.trim() ?? zone,
            celsius: milli / 1000,
          });
      }
    }
    if (want.has('hwmon')) {
      const base = join(sys, 'class', 'hwmon');
      for (const dev of await listDir(base)) {
        const name = (await readText(join(base, dev, 'name')))?.trim() ?? dev;
        for (const file of (await listDir(join(base, dev))).filter((f) => /^temp\d+_input$/.test(f))) {
          const milli = parseNumber(await readText(join(base, dev, file)));
          if (milli === undefined) {
            missing('hwmon');
            continue;
          }
          const label = (await readText(join(base, dev, file.replace('_input', '_label'))))?.trim();
          records.push({ ts, metric: 'temperature', source: 'hwmon', sensor: `${name}/${label ?? file.replace('_input', '')}`, celsius: milli / 1000 });
        }
      }
    }
    if (records.length > 0) await ctx.emit(records);
  }
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
