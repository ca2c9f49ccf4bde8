/** A /proc and /sys fixture tree for the governor's gates: files written as a test wants the machine to read. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export class FixtureTree {
  readonly root = mkdtempSync(join(tmpdir(), 'governor-tree-'));
  readonly proc = join(this.root, 'proc');
  readonly sys = join(this.root, 'sys');

  constructor(cpus = 2) {
    this.write(`${this.proc}/stat`, `cpu  1 2 3\n${Array.from({ length: cpus }, (_, i) => `cpu${i} 1 2 3`).join('\n')}\nintr 0\n`);
    this.load(0.1);
    this.pressure(0);
    this.memory(512);
    this.write(`${this.proc}/uptime`, '1000.00 900.00\n');
    this.write(`${this.proc}/sys/kernel/random/boot_id`, 'boot-1\n');
  }

  write(path: string, text: string): void {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }

  load(oneMinute: number): void {
    this.write(`${this.proc}/loadavg`, `${oneMinute.toFixed(2)} 0.50 0.40 1/123 4567\n`);
  }

  pressure(avg10: number): void {
    this.write(`${this.proc}/pressure/cpu`, `some avg10=${avg10.toFixed(2)} avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n`);
  }

  memory(availableMiB: number): void {
    this.write(`${this.proc}/meminfo`, `MemTotal:        1024000 kB\nMemFree:          10000 kB\nMemAvailable:   ${Math.round(availableMiB * 1024)} kB\n`);
  }

  /** A mains adapter (online or not) and a battery with a capacity and status. */
  power(mainsOnline: boolean, capacity: number): void {
    const ps = `${this.sys}/class/power_supply`;
    this.write(`${ps}/AC/type`, 'Mains\n');
    this.write(`${ps}/AC/online`, mainsOnline ? '1\n' : '0\n');
    this.write(`${ps}/BAT0/type`, 'Battery\n');
    this.write(`${ps}/BAT0/capacity`, `${capacity}\n`);
    this.write(`${ps}/BAT0/status`, mainsOnline ? 'Charging\n' : 'Discharging\n');
  }

  interface(name: string, rx: number, tx: number): void {
    this.write(`${this.sys}/class/net/${name}/statistics/rx_bytes`, `${rx}\n`);
    this.write(`${this.sys}/class/net/${name}/statistics/tx_bytes`, `${tx}\n`);
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
