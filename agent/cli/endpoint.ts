/**
 * Where the running agent's HTTP endpoint is, for `status` and `tap`: `--url`, else the address the agent
 * wrote to `<data_dir>/http.url` when it started listening, else `http.listen` of the config. The token is
 * read from `<data_dir>/http-token` (mode 0600: only the agent's user and root can act or tap).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EMBEDDED_DEFAULTS } from '../config/defaults.ts';
import { loadConfigFile, parseConfig } from '../app.ts';
import { configPaths } from '../config/paths.ts';
import { AgentError, describeError } from '../errors.ts';
import { readToken, tokenPath, URL_FILE } from '../observe/token.ts';

export interface EndpointOptions {
  config?: string;
  url?: string;
}

export interface Endpoint {
  url: string;
  dataDir: string;
  token(): string;
}

export function findEndpoint(options: EndpointOptions): Endpoint {
  const loaded = options.config ? loadConfigFile(options.config) : parseConfig(EMBEDDED_DEFAULTS, '(embedded defaults)', process.cwd());
  const { dataDir } = configPaths(loaded);
  let url = options.url;
  if (url === undefined) {
    try {
      url = readFileSync(join(dataDir, URL_FILE), 'utf8').trim();
    } catch {
      const listen = loaded.config.http.listen;
      if (!loaded.config.http.enabled || listen.endsWith(':0')) {
        throw new AgentError(
          'AGENT_UNREACHABLE',
          `no running agent's endpoint found: ${join(dataDir, URL_FILE)} is missing (is the agent running with http.enabled?); or give --url`,
        );
      }
      url = `http://${listen}`;
    }
  }
  return {
    url: url.replace(/\/+$/, ''),
    dataDir,
    token: () => {
      const token = readToken(dataDir);
      if (token === undefined) {
        throw new AgentError(
          'AGENT_UNREACHABLE',
          `cannot read the token ${tokenPath(dataDir)}: the agent writes it when it starts with http.enabled; run as its user or root`,
        );
      }
      return token;
    },
  };
}

/** GET `path` from the endpoint; an agent that does not answer is AGENT_UNREACHABLE naming the address. */
export async function request(endpoint: Endpoint, path: string, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(`${endpoint.url}${path}`, { ...init, signal: init.signal ?? AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new AgentError('AGENT_UNREACHABLE', `the agent does not answer at ${endpoint.url}: ${describeError(err)}`, { cause: err });
  }
  if (!response.ok && response.status !== 503) {
    const body = (await response.text()).slice(0, 300).trim();
    throw new AgentError('AGENT_UNREACHABLE', `${endpoint.url}${path} answered ${response.status}: ${body}`);
  }
  return response;
}
