/**
 * A process that keeps a governor budget (the real Budget, its real state file), for the kill -9 and clock-jump
 * tests. Its wall clock is the system's plus an offset the test gives (a clock jump), its uptime and boot id
 * the machine's own. `count`: adds bytes in a loop and prints each total after it is counted; `show`: prints
 * the totals it resumed from and exits.
 */
import { readFileSync } from 'node:fs';
import { governorSchema } from '../../agent/config/governor-schema.ts';
import { Budget } from '../../agent/governor/budget.ts';

const [mode, stateFile, offsetText] = process.argv.slice(2) as [string, string, string];
const config = governorSchema.parse({ budget: { monthly: '1GiB', daily: '100MiB', timezone: 'Europe/Berlin', cycle_start_day: 17, persist_step: '16KiB' } })!;
const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
const offset = Number(offsetText);
const budget = new Budget(config.budget!, stateFile, { wallMs: () => Date.now() + offset, uptimeMs: uptime, bootId: () => boot });

function line(): string {
  const s = budget.snapshot();
  return JSON.stringify({ cycleKey: s.cycleKey, dayKey: s.dayKey, cycle: s.cycle, day: s.day, t: s.clock.t });
}

if (mode === 'show') {
  process.stdout.write(`${line()}\n`);
} else {
  const step = () => {
    budget.addWire(1 + Math.floor(Math.random() * 1500));
    budget.charge('normal', 100);
    process.stdout.write(`${line()}\n`);
    setImmediate(step);
  };
  step();
}
