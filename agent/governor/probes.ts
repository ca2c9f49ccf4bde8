/**
 * What the gates read from the machine, under configurable roots so tests drive them from fixture trees.
 * Every reader returns undefined when its file is absent or unreadable (a kernel without PSI, a gateway
 * without a battery): a gate with nothing to read stays open rather than holding data on a guess.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export class MachineProbes {
  private readonly proc: string;
  private readonly sys: string;

  constructor(procRoot: string, sysRoot: string) {
    this.proc = procRoot;
    this.sys = sysRoot;
  }

  /** One-minute load average divided by the number of CPUs (/proc/stat's cpuN lines, else the process's view). */
  loadPerCore(): number | undefined {
    const text = read(join(this.proc, 'loadavg'));
    const load = text === undefined ? Number.NaN : Number(text.trim().split(/\s+/)[0]);
    if (!Number.isFinite(load)) return undefined;
    const stat = read(join(this.proc, 'stat'));
    const cpus = stat === undefined ? 0 : stat.split('\n').filter((l) => /^cpu\d+\s/.test(l)).length;
    return load / (cpus > 0 ? cpus : availableParallelism());
  }

  /** /proc/pressure/cpu "some avg10": the share of the last 10 s some task waited for a CPU, in percent. */
  cpuPressure(): number | undefined {
    const text = read(join(this.proc, 'pressure', 'cpu'));
    const m = text?.match(/^some\s.*\bavg10=([\d.]+)/m);
    return m ? Number(m[1]) : undefined;
  }

  /** MemAvailable in MiB. */
  memoryAvailableMiB(): number | undefined {
    const m = read(join(this.proc, 'meminfo'))?.match(/^MemAvailable:\s+(\d+)\s*kB/m);
    return m ? Number(m[1]) / 1024 : undefined;
  }

  /** Power supplies: whether mains is online, whether a battery discharges, and the lowest battery capacity. */
  power(): { mainsOnline: boolean; discharging: boolean; capacity: number | undefined } | undefined {
    const dir = join(this.sys, 'class', 'power_supply');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return undefined;
    }
    let mainsOnline = false;
    let discharging = false;
    let capacity: number | undefined;
    let batteries = 0;
    let mains = 0;
    for (const name of names) {
      const field = (f: string) => read(join(dir, name, f))?.trim();
      const type = field('type');
      if (type === 'Battery') {
        batteries++;
        if (field('status') === 'Discharging') discharging = true;
        const c = Number(field('capacity'));
        if (Number.isFinite(c)) capacity = capacity === undefined ? c : Math.min(capacity, c);
      } else if (type !== undefined) {
        mains++; // Mains, USB, USB_PD…: something that feeds the gateway when online
        if (field('online') === '1') mainsOnline = true;
      }
    }
    if (batteries === 0 && !mainsOnline) return undefined;
    return { mainsOnline, discharging: discharging || (batteries > 0 && mains > 0 && !mainsOnline), capacity };
  }

  /** rx + tx bytes of a network interface (/sys/class/net/<if>/statistics). */
  interfaceBytes(name: string): { rx: number; tx: number } | undefined {
    const dir = join(this.sys, 'class', 'net', name, 'statistics');
    const rx = Number(read(join(dir, 'rx_bytes'))?.trim());
    const tx = Number(read(join(dir, 'tx_bytes'))?.trim());
    return Number.isFinite(rx) && Number.isFinite(tx) ? { rx, tx } : undefined;
  }

  /** Seconds since boot and the boot's id: together they tell real elapsed time across a restart of the agent. */
  uptimeMs(): number | undefined {
    const s = Number(read(join(this.proc, 'uptime'))?.trim().split(/\s+/)[0]);
    return Number.isFinite(s) ? s * 1000 : undefined;
  }

  bootId(): string | undefined {
    return read(join(this.proc, 'sys', 'kernel', 'random', 'boot_id'))?.trim() || undefined;
  }
}
