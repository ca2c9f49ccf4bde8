/**
 * Remote control of one running agent: the control connection, the retained status, commands, and the desired
 * config topics, put together. Started by `run` after the agent when `fleet.enabled`, stopped before it.
 */
import type { LoadedConfig } from '../config/load.ts';
import { configPaths } from '../config/paths.ts';
import { readBrokerPassword } from '../broker/credentials.ts';
import type { Logger } from '../log.ts';
import type { RunningAgent } from '../runtime/agent.ts';
import type { Telemetry } from '../telemetry/registry.ts';
import { type TlsConnectionOptions, tlsConnectionOptions } from '../util/tls.ts';
import { VERSION } from '../version.ts';
import { maskSecrets } from './actions.ts';
import { ControlChannel } from './channel.ts';
import { CommandStore } from './command-store.ts';
import { CommandHandler } from './commands.ts';
import { DesiredConfig } from './desired.ts';
import type { ApplyReport, DesiredConfigPipeline, RefusalReason, RemoteExtension, RemoteExtensionFactory, Verifier } from './seams.ts';
import { nextSession, recordExit, remoteStateDir, takeLastExit } from './state-files.ts';
import { StatusReporter } from './status.ts';
import { updateStatusSource } from '../update/status.ts';
import { fleetTopics } from './topics.ts';
import { FileTrustStore, TrustChain } from '../trust/index.ts';

export interface RemoteControlParts {
  verifier: Verifier;
  pipeline: DesiredConfigPipeline;
  /** Ends this run and starts again in the same process (the run command's loop). */
  restart(): void;
  setLogLevel(level: string): void;
  /** A report made before remote control started (a change the previous run did not finish), published at connect. */
  firstReport?: ApplyReport | undefined;
  /** Parts built outside this room that share the connection (the self-update delivery). */
  extensions?: readonly RemoteExtensionFactory[] | undefined;
}

export interface RemoteControl {
  readonly session: number;
  readonly status: StatusReporter;
  /** Publishes a report the pipeline made on its own (a reload of the local file). */
  report(report: ApplyReport): Promise<void>;
  /** Why the agent stops, kept for the next start's `last_exit`. */
  stop(reason: string): Promise<void>;
}

export interface ControlBroker {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  /** Node's TLS options from `fleet.broker.tls` (files read now), for an `mqtts://` URL. */
  tls?: TlsConnectionOptions | undefined;
}

/** The broker URL, credentials and TLS of the control connection (`embedded`: this agent's own broker, on loopback). */
export function controlBroker(loaded: LoadedConfig): ControlBroker {
  const { config } = loaded;
  const { baseDir } = configPaths(loaded);
  const fleet = config.fleet.broker;
  if (fleet.url === 'embedded') {
    const host = config.broker.host === '0.0.0.0' || config.broker.host === '::' ? '127.0.0.1' : config.broker.host;
    const own = fleet.username === undefined && config.broker.username !== undefined;
    const username = own ? config.broker.username : fleet.username;
    const password = own ? readBrokerPassword(config.broker, baseDir) : fleet.username === undefined ? undefined : readBrokerPassword(fleet, baseDir);
    return { url: `mqtt://${host.includes(':') ? `[${host}]` : host}:${config.broker.port}`, username, password };
  }
  return {
    url: fleet.url,
    username: fleet.username,
    password: fleet.username === undefined ? undefined : readBrokerPassword(fleet, baseDir),
    tls: fleet.tls ? tlsConnectionOptions(fleet.tls, baseDir, 'fleet.broker') : undefined,
  };
}

export function refusedCounter(telemetry: Telemetry) {
  return telemetry.counter('edge_remote_refused_total', 'Remote documents and commands refused, by kind and reason', ['kind', 'reason']);
}

/** Remote control with the trust chain kept in `<data_dir>/remote/` and the given pipeline. */
export function startFleet(
  loaded: LoadedConfig,
  agent: RunningAgent,
  hooks: Pick<RemoteControlParts, 'restart' | 'setLogLevel' | 'pipeline' | 'firstReport' | 'extensions'>,
  log: Logger,
): Promise<RemoteControl> {
  const { trust, max_message_bytes } = loaded.config.fleet;
  const store = new FileTrustStore(remoteStateDir(configPaths(loaded).dataDir));
  const verifier = new TrustChain({ keys: trust.root_keys, threshold: trust.threshold }, store, { maxBytes: max_message_bytes });
  return startRemoteControl(loaded, agent, { ...hooks, verifier }, log);
}

export async function startRemoteControl(loaded: LoadedConfig, agent: RunningAgent, parts: RemoteControlParts, log: Logger): Promise<RemoteControl> {
  const { config } = loaded;
  const fleet = config.fleet;
  const device = config.device!.id;
  const topics = fleetTopics(fleet.topic_prefix, device);
  const stateDir = remoteStateDir(configPaths(loaded).dataDir);
  const session = nextSession(stateDir);
  const lastExit = takeLastExit(stateDir, session);
  const refused = refusedCounter(agent.telemetry);
  let lastError: string | undefined;
  const count = (kind: string, reason: RefusalReason) => {
    refused.inc({ kind, reason });
    lastError = `${kind} refused: ${reason}`;
  };

  let channel: ControlChannel | undefined;
  const publish = (topic: string, payload: string, retain: boolean) => channel?.publish(topic, payload, { retain }) ?? Promise.resolve();
  const connected = () => channel?.connected ?? false;

  const status = new StatusReporter(
    {
      device,
      session,
      version: VERSION,
      started: new Date().toISOString(),
      groups: fleet.groups,
      lastExit,
      agent: () => {
        const s = agent.status();
        return {
          queue: { records: s.queue.records, bytes: s.queue.bytes, oldest_age_s: oldestAgeSeconds(agent) },
          sources: Object.fromEntries(Object.entries(s.sources).map(([name, v]) => [name, v.state])),
          sink: { state: s.sink.connected ? 'connected' : 'disconnected' },
        };
      },
      config: () => {
        const e = parts.pipeline.effective();
        return { version: e.version, layers: e.layers, last_apply: parts.pipeline.lastReport() };
      },
      refused: () => refused.by('reason'),
      lastError: () => lastError,
      update: updateStatusSource(),
      extra: () => Object.assign({}, ...extensions.map((e) => e.status?.() ?? {})),
    },
    topics.status,
    publish,
    connected,
  );

  const extensions: RemoteExtension[] = (parts.extensions ?? []).map((make) =>
    make({
      device,
      groups: fleet.groups,
      prefix: fleet.topic_prefix,
      protocolVersion: fleet.broker.protocol_version,
      verifier: parts.verifier,
      publish: (topic, payload, options) => channel?.publish(topic, payload, options) ?? Promise.resolve(),
      isConnected: connected,
      refused: count,
      statusChanged: () => void status.publishBirth(),
    }),
  );
  const extensionOf = (topic: string) => extensions.find((e) => e.handles(topic));

  let firstReport = parts.firstReport;
  const publishReport = async (report: ApplyReport) => {
    await publish(topics.report, JSON.stringify(report), true);
    await status.publishBirth();
  };
  const desired = new DesiredConfig({
    device,
    groups: fleet.groups,
    topics,
    verifier: parts.verifier,
    pipeline: parts.pipeline,
    publishReport,
    refused: count,
    log: log.child({ component: 'fleet-config' }),
  });

  const store = new CommandStore(() => agent.queue.database);
  const commands = new CommandHandler({
    device,
    responseTopic: topics.commandResponse,
    allowUnsignedReads: fleet.allow_unsigned_reads,
    verifier: parts.verifier,
    store,
    publish: (reply, payload) => channel?.publish(reply.topic, payload, { correlationData: reply.correlation }) ?? Promise.resolve(),
    refused: (reason) => count('command', reason),
    after: (action) => {
      if (action === 'restart') parts.restart();
    },
    log: log.child({ component: 'fleet-commands' }),
    run: async (action, args) => {
      switch (action) {
        case 'ping':
          return { pong: true, device, session, at: new Date().toISOString() };
        case 'status':
          return status.birth();
        case 'queue.stats':
          return { ...agent.status().queue, oldest_age_s: oldestAgeSeconds(agent) };
        case 'config.get':
          return { version: parts.pipeline.effective().version, config: maskSecrets(parts.pipeline.effective().config) };
        case 'flush':
          await agent.queue.flush();
          return { queued: agent.status().queue.records };
        case 'restart':
          return { restarting: true };
        case 'log.level':
          parts.setLogLevel(args.level as string);
          return { level: args.level };
        case 'source.pause':
        case 'source.resume': {
          const runner = agent.source(args.name as string);
          if (!runner) throw new Error(`no source named ${JSON.stringify(args.name)}`);
          const changed = action === 'source.pause' ? await runner.pause() : await runner.resume();
          return { name: runner.name, state: runner.state, changed };
        }
        case 'config.apply': {
          const report = await desired.apply(args.envelope);
          if (report.outcome !== 'committed' && report.outcome !== 'unchanged')
            throw Object.assign(new Error(report.message ?? report.outcome), { reason: report.reason ?? report.outcome });
          return report;
        }
        case 'config.rollback': {
          if (!parts.pipeline.rollback) throw new Error('this build cannot roll back on request');
          const report = await parts.pipeline.rollback();
          await publishReport(report);
          if (report.outcome !== 'rolled_back' || report.reason !== 'operator')
            throw Object.assign(new Error(report.message ?? report.outcome), { reason: report.reason ?? report.outcome });
          return report;
        }
        default:
          throw new Error(`unknown action ${action}`);
      }
    },
  });

  const broker = controlBroker(loaded);
  const commandLog = log.child({ component: 'fleet' });
  channel = new ControlChannel(
    {
      url: broker.url,
      clientId: `${device}-control`,
      protocolVersion: fleet.broker.protocol_version,
      username: broker.username,
      password: broker.password,
      tls: broker.tls,
      will: { topic: topics.status, payload: status.will() },
      maxMessageBytes: fleet.max_message_bytes,
      subscriptions: [topics.status, topics.command, ...desired.subscriptions(), ...extensions.flatMap((e) => e.subscriptions())],
      log: commandLog,
      // The control connection's bytes count in the budget of whichever delivery runs when a socket opens.
      wire: { socket: (socket) => agent.governor?.controlWire.socket(socket) },
    },
    {
      connected: () => {
        const owed = firstReport;
        firstReport = undefined;
        if (owed) void publishReport(owed);
        void status.publishBirth();
        void commands.connected();
        for (const e of extensions) e.connected();
      },
      message: (m) => {
        if (m.topic === topics.status) status.seen(m.payload);
        else if (m.topic === topics.command) void commands.handle(m);
        else if (desired.handles(m.topic)) desired.handle(m);
        else extensionOf(m.topic)?.handle(m);
      },
      oversize: (m) => {
        if (m.topic === topics.command) void commands.oversize(m);
        else if (desired.handles(m.topic)) desired.oversize(m);
        else if (m.topic === topics.status) status.seen(Buffer.alloc(0));
        else extensionOf(m.topic)?.oversize?.(m);
      },
    },
  );
  status.start();
  commandLog.info({ url: broker.url, session, groups: fleet.groups, prefix: fleet.topic_prefix }, 'fleet remote control started');

  return {
    session,
    status,
    report: publishReport,
    async stop(reason: string) {
      status.stop();
      commands.stop();
      for (const e of extensions) await e.stop();
      recordExit(stateDir, reason);
      await channel.close({ topic: topics.status, payload: status.offline() });
    },
  };
}

/** Age of the oldest queued chunk, from the queue file (0 when empty). */
function oldestAgeSeconds(agent: RunningAgent): number {
  try {
    const oldest = agent.queue.database.prepare('SELECT min(created) FROM chunks').pluck().get() as number | null;
    return oldest === null ? 0 : Math.max(0, Math.round((Date.now() - oldest) / 1000));
  } catch {
    return 0;
  }
}
