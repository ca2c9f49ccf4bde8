import { matchesGlob } from 'node:path';

/**
 * The `devices` option: globs over device ids (`hwmon/coretemp`) and sensor ids (`hwmon/coretemp/Core 0`).
 * A device is read only if some glob could match it or one of its sensors, so an excluded device's broken
 * files are never read nor counted.
 */
export class DeviceFilter {
  private readonly patterns: readonly string[];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns;
  }

  device(deviceId: string): boolean {
    if (this.patterns.length === 0) return true;
    // Device ids are `<subsystem>/<name>`: a sensor glob applies to a device when its first two parts match it.
    return this.patterns.some((p) => p.includes('**') || matchesGlob(deviceId, p) || matchesGlob(deviceId, p.split('/').slice(0, 2).join('/')));
  }

  sensor(deviceId: string, sensorId: string): boolean {
    if (this.patterns.length === 0) return true;
    return this.patterns.some((p) => matchesGlob(deviceId, p) || matchesGlob(sensorId, p));
  }
}
