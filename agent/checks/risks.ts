/** Settings that are legal but risky: printed by check-config as warnings (exit 0). */
import { isIP } from 'node:net';
import type { LoadedConfig } from '../config/load.ts';
import { URL_PASSWORD_WARNING, urlsWithPasswords } from '../config/url-secrets.ts';
import { type ConfigProblem, warning } from './problems.ts';

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

export function riskProblems(loaded: LoadedConfig): ConfigProblem[] {
  const { broker } = loaded.config;
  const problems: ConfigProblem[] = [];
  if (broker.embedded && !isLoopback(broker.host))
    problems.push(
      warning(['broker', 'host'], `the embedded broker listens on ${broker.host}, where other machines can reach it; 127.0.0.1 keeps it to this one`),
    );
  for (const path of urlsWithPasswords(loaded.config)) problems.push(warning(path, URL_PASSWORD_WARNING));
  return problems;
}
