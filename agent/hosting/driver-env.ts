/**
 * The environment a driver instance is created with: its logger, its base directory, and its own counters and
 * problem reporter in the telemetry registry. The runtime builds one per source, sink and receiver input;
 * tests and benchmarks that drive a driver directly build theirs here too, so they see what the runtime gives.
 */
import type { DriverEnv } from '../contracts/driver.ts';
import type { Counters } from '../telemetry/counters.ts';
import type { ProblemReporter } from '../telemetry/problems.ts';
import type { Logger } from '../log.ts';
import { ComponentCounters } from '../telemetry/counters.ts';
import { RateLimitedProblems } from '../telemetry/problems.ts';
import { Telemetry } from '../telemetry/registry.ts';

export function driverEnv(
  base: { log: Logger; baseDir: string },
  component: { kind: 'source' | 'sink' | 'receiver_input'; name: string } = { kind: 'sink', name: 'standalone' },
  telemetry: Telemetry = new Telemetry(),
): DriverEnv & { counters: ComponentCounters } {
  const counters = new ComponentCounters(telemetry, component.kind, component.name);
  return { log: base.log, baseDir: base.baseDir, counters, problems: new RateLimitedProblems(counters, base.log) };
}

/**
 * A problem reporter for a context built by hand (tests, benchmarks): it counts into `counters()`, read at each
 * report, so it can name the context's own counters before the context object exists.
 */
export function problemReporter(counters: () => Counters, log: Logger): ProblemReporter {
  return new RateLimitedProblems({ add: (name, n) => counters().add(name, n) }, log);
}
