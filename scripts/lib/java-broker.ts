import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * The shared part of scripts/lib/kafka.ts and scripts/lib/pulsar.ts: a real Java broker run by its
 * scripts/<service>/standalone.sh (see scripts/lib/java-service.sh), in a fresh directory on free ports, stopped
 * or killed by the PID the script recorded.
 */
export type JavaService = 'kafka' | 'pulsar';

const run = promisify(execFile);

/** The absolute path of scripts/<service>/standalone.sh. */
export function standaloneScript(service: JavaService): string {
  return resolve(import.meta.dirname, `../${service}/standalone.sh`);
}

/** Runs the service's script with ARGS; resolves with its trimmed stdout, rejects with the tail of its stderr. */
export async function runStandalone(service: JavaService, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await run('bash', [standaloneScript(service), ...args], { env, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 });
    return stdout.trim();
  } catch (cause) {
    const stderr = (cause as { stderr?: string }).stderr ?? '';
    throw new Error(`scripts/${service}/standalone.sh ${args.join(' ')} failed: ${stderr.trim().split('\n').slice(-15).join('\n')}`, { cause });
  }
}

function readPorts(file: string): Record<string, string> {
  const entries = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.includes('='))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const);
  return Object.fromEntries(entries);
}

export interface ScriptedBroker {
  /** The broker's data directory (kept across restarts). */
  dir: string;
  /** The KEY=value lines of DIR/ports.env as of the last (re)start. */
  ports(): Record<string, string>;
  /** SIGTERM, then SIGKILL after the script's stop timeout. */
  stop(): Promise<void>;
  /** SIGKILL: the crash case. */
  kill(): Promise<void>;
  /** Start again on the same directory and ports, once stopped or killed. */
  restart(): Promise<void>;
  /** Kill and remove the directory. */
  close(): Promise<void>;
}

/** Starts the service in a fresh directory with ENV; resolves once the script reports it ready. */
export async function startScriptedBroker(service: JavaService, env: NodeJS.ProcessEnv): Promise<ScriptedBroker> {
  const dir = mkdtempSync(join(tmpdir(), `edge-${service}-`));
  let ports: Record<string, string> = {};
  const start = async () => {
    ports = readPorts(await runStandalone(service, ['start', dir], env));
  };
  try {
    // A port chosen free can be taken by another test before the broker binds it; the script refuses that
    // before starting anything, so choosing again is safe.
    for (let attempt = 1; ; attempt++) {
      try {
        await start();
        break;
      } catch (err) {
        if (attempt >= 3 || !/already in use/.test(String((err as Error).message))) throw err;
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let running = true;
  return {
    dir,
    ports: () => ports,
    async stop() {
      await runStandalone(service, ['stop', dir], env);
      running = false;
    },
    async kill() {
      await runStandalone(service, ['kill', dir], env);
      running = false;
    },
    async restart() {
      if (running) throw new Error(`${service} broker is still running; stop or kill it first`);
      await start();
      running = true;
    },
    async close() {
      if (running) await runStandalone(service, ['kill', dir], env);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
