import type { Command } from 'commander';
import { EMBEDDED_DEFAULTS } from '../config/defaults.ts';
import { loadConfigFile, parseConfig } from '../app.ts';
import { requireRunnable } from '../config/load.ts';
import { startupKeyCheck } from '../checks/index.ts';
import { createLogger, type LogFormat, logProcessWarnings } from '../log.ts';
import { startWithRemoteConfig } from '../remote/config-start.ts';
import type { ConfigPipeline } from '../remote/config-pipeline.ts';
import { PipelineAdapter } from '../remote/pipeline-adapter.ts';
import { startFleet } from '../remote/remote-control.ts';
import type { ApplyReport } from '../remote/seams.ts';
import { locateRelease } from '../update/locate.ts';
import { systemdNotifier } from '../update/notify.ts';
import { type TrialAgent, watchTrial } from '../update/trial.ts';
import { RESTART_INTO_TRIAL_EXIT, updateDeliveryFactory } from '../update/transfer-setup.ts';
import { type DefineCommand, logFormatOption } from './command.ts';
import { watchConfigFile } from './config-watch.ts';
import { applyRunningFlags } from '../util/running-flags.ts';
import { untilSignal } from './signals.ts';
import { configPaths } from '../config/paths.ts';
import { recordExit, recordStart } from '../observe/exit-reason.ts';
import type { HttpEndpoint } from '../observe/server.ts';

export const run: DefineCommand = (parent: Command, exit) => {
  parent
    .command('run')
    .summary('run the agent (no FILE: the embedded demo defaults)')
    .description(
      'Run the agent: sources → durable queue → encrypted batches → sink, until SIGINT or SIGTERM. SIGHUP (or, with fleet.watch_local_file, a change of the file) reloads the config file: validated, applied live, health-checked, then committed or rolled back (docs/remote.md).',
    )
    .usage('[--config FILE] [--log-format FORMAT]')
    .option('-c, --config <FILE>', 'config file (YAML); without it, the embedded demo defaults')
    .addOption(logFormatOption())
    .action(async (options: RunOptions) => exit(await runCommand(options)));
};

export interface RunOptions {
  config?: string;
  logFormat?: LogFormat;
}

export async function runCommand(values: RunOptions): Promise<number> {
  const loaded = values.config ? loadConfigFile(values.config) : parseConfig(EMBEDDED_DEFAULTS, '(embedded defaults)', process.cwd());
  requireRunnable(loaded);
  // Key files are configuration: a missing or open one is exit 2 naming the setting, before anything starts.
  await startupKeyCheck(loaded, 'run');
  const log = createLogger(loaded.config.log.level, { format: values.logFormat ?? loaded.config.log.format });
  logProcessWarnings(log);
  if (!values.config) log.info('no --config given: running the embedded demo defaults (system source → queue → embedded broker → receiver on stdout)');
  // Listening before the start: a SIGTERM that comes while sources start must still stop the agent cleanly.
  let pipeline: ConfigPipeline | undefined;
  const reload = (why: string) => {
    if (!pipeline) {
      log.warn({ cause: why }, 'configuration reload asked for while starting; ignored');
      return;
    }
    log.info({ cause: why, config: values.config ?? '(embedded defaults)' }, 'reloading the configuration file');
    // The pipeline logs the outcome (committed, unchanged, refused or rolled back) and never rejects on one.
    pipeline.reloadLocal().catch((err: unknown) => log.error({ err }, 'configuration reload failed'));
  };
  const stopRequested = untilSignal(log, () => reload('SIGHUP'));
  const watch = values.config && loaded.config.fleet.watch_local_file ? watchConfigFile(values.config, () => reload('file changed'), log) : undefined;
  // Under systemd (Type=notify): READY=1 once started, WATCHDOG=1 from the event loop (docs/update.md).
  const notifier = systemdNotifier(process.env, (err) => log.warn({ err }, 'systemd-notify could not be run'));
  const release = locateRelease();
  let trialEnded: Promise<number> | undefined;
  let current: TrialAgent | undefined;
  // A delivered update staged and in trial: this process ends so the service starts the new version.
  let intoTrial!: () => void;
  const handover = new Promise<number>((resolve) => (intoTrial = () => resolve(RESTART_INTO_TRIAL_EXIT)));
  // A `restart` command ends one turn of this loop: everything stops cleanly and starts again in process, on
  // the committed configuration.
  let lastExit: string | undefined;
  for (;;) {
    const startedAt = Date.now();
    const started = await startWithRemoteConfig(loaded, log, { localPath: values.config });
    const agent = started.agent;
    const dataDir = configPaths(agent.loaded).dataDir;
    lastExit ??= recordStart(dataDir);
    // Loaded only when on: an agent without the endpoint does not pay for the HTTP server's code.
    let endpoint: HttpEndpoint | undefined;
    try {
      if (agent.loaded.config.http.enabled) endpoint = await (await import('../observe/server.ts')).startHttp(agent, log, { lastExit });
    } catch (err) {
      // The address is configuration: stop what started, cleanly, and say which setting.
      await agent.stop();
      watch?.close();
      recordExit(dataDir, 'start failed');
      throw err;
    }
    // After "agent running" and the endpoint's start: from here on Node's built-ins no longer match their
    // code cache and are compiled from source when loaded (agent/util/running-flags.ts says why).
    applyRunningFlags();
    current = agent;
    pipeline = started.pipeline;
    let restartRequested!: () => void;
    const restart = new Promise<'restart'>((resolve) => (restartRequested = () => resolve('restart')));
    let adapter: PipelineAdapter | undefined;
    const remote = loaded.config.fleet.enabled
      ? await startFleet(
          loaded,
          agent,
          {
            restart: () => restartRequested(),
            setLogLevel: (level) => (log.level = level),
            pipeline: (adapter = new PipelineAdapter(started.pipeline, agent, (report) => void remoteReport(report), started.interrupted)),
            firstReport: started.interrupted,
            extensions: [
              updateDeliveryFactory(
                loaded,
                () => agent,
                release,
                () => intoTrial(),
                log,
              ),
            ].filter((f) => f !== undefined),
          },
          log,
        )
      : undefined;
    const remoteReport = (report: ApplyReport) => remote?.report(report);
    const statusTimer = setInterval(() => log.info({ status: agent.status() }, 'status'), 60_000).unref();
    if (!trialEnded) {
      notifier.ready(release?.version ? `edge-agent release ${release.version} running` : 'edge-agent running');
      // A release in trial commits itself once healthy, or ends with a code the guard reads (agent/update/trial.ts).
      trialEnded = watchTrial(release, () => current!, startedAt, log) ?? new Promise<number>(() => {});
    }
    const signal = await Promise.race([stopRequested, restart, trialEnded, handover]);
    clearInterval(statusTimer);
    if (typeof signal === 'number') {
      const why = signal === RESTART_INTO_TRIAL_EXIT ? 'restarting into a new release' : 'trial failed its health gate';
      log.info({ exit: signal }, `stopping: ${why}`);
      notifier.stopping();
      await endpoint?.close();
      await remote?.stop(why);
      adapter?.close();
      await agent.stop();
      recordExit(dataDir, signal === RESTART_INTO_TRIAL_EXIT ? why : 'new release failed its health gate');
      watch?.close();
      notifier.close();
      log.info({ exit: signal }, `stopped: ${why}`);
      // The service restarts on this exit: a connection left half-closed by a drop must not hold the process
      // (and so the new version) back. Unref'd: a process that ends by itself ends sooner.
      setTimeout(() => process.exit(signal), 1_000).unref();
      return signal;
    }
    log.info({ signal }, signal === 'restart' ? 'restarting on request' : 'stopping');
    await endpoint?.close();
    if (signal !== 'restart') notifier.stopping();
    // Remote control first: no command may reach an agent that is stopping.
    await remote?.stop(signal === 'restart' ? 'restart command' : `signal ${signal}`);
    adapter?.close();
    pipeline = undefined;
    await agent.stop();
    recordExit(dataDir, signal === 'restart' ? 'restart command' : `signal ${signal}`);
    if (signal === 'restart') continue;
    watch?.close();
    notifier.close();
    log.info({ status: agent.status() }, 'stopped');
    return 0;
  }
}
