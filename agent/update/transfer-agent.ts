/**
 * The device side of self-update delivery (docs/update.md, "Delivery"), a part of remote control that shares
 * its connection:
 *
 *   manifest (retained, `<p>/<device>/update` or `<p>/group/<g>/update`) → verified through the trust chain and
 *   checked (target, arch, size, version, release counter) → a fresh timestamp for it (`…/update/timestamp`) →
 *   download (chunks the running executable has are copied; the rest asked for on `…/update/req`, received on
 *   `…/update/chunk`) → the whole file verified → the maintenance window and no alarm backlog (unless forced)
 *   → still fresh → `stage` and `beginTrial` in the release store → the agent restarts into the trial, whose
 *   guard and health gate decide (the release store's side).
 *
 * Every refusal is counted (`edge_remote_refused_total{kind="update"}`), shown in the status, and published
 * retained on `<p>/<device>/update/report`. Nothing here stops the agent from forwarding.
 */
import { existsSync } from 'node:fs';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { InboundMessage } from '../remote/channel.ts';
import { refusalOf, type RemoteExtension, type RemoteExtensionContext } from '../remote/seams.ts';
import { fleetTopics } from '../remote/topics.ts';
import { isRefusal, Refusal, type RefusalReason, type UpdateManifestDocument } from '../trust/index.ts';
import { checkManifest, manifestId } from './manifest.ts';
import type { ReleaseArch, ReleaseStore } from './releases.ts';
import { TimestampKeeper, updateClock } from './timestamp.ts';
import { Download, type DownloadProgress } from './transfer-download.ts';
import { correlationOf, decodeFrame, type TransferObject } from './transfer-protocol.ts';
import { removeDownloadFiles } from './transfer-files.ts';

export interface UpdateDeliverySettings {
  maxBytes: number;
  inFlight: number;
  retryMs: number;
  trialDeadlineMs: number;
  /** True while the update must wait (outside the maintenance window, an alarm backlog draining): why. */
  mustWait(now: Date): string | undefined;
}

export interface UpdateDeliveryOptions {
  context: RemoteExtensionContext;
  releases: Pick<ReleaseStore, 'state' | 'executablePath' | 'stagingPath' | 'stage' | 'beginTrial' | 'highestReleaseCounter' | 'isBroken' | 'forgetBroken'>;
  settings: UpdateDeliverySettings;
  runningVersion: string;
  arch: string;
  /** The running executable (chunks it has are copied, not fetched). */
  localSource: string | undefined;
  /** Where the newest timestamp is kept (`<data_dir>/remote`). */
  stateDir: string;
  /** The trial is set up: end this process so that the service starts `current` (the new version). */
  restartIntoTrial(version: string): void;
  log: Logger;
  clock?: () => number;
}

export type UpdateOutcome = 'refused' | 'waiting_timestamp' | 'downloading' | 'waiting_window' | 'installing' | 'failed' | 'withdrawn';

export interface UpdateReport {
  manifest?: string | undefined;
  version?: string | undefined;
  release?: number | undefined;
  outcome: UpdateOutcome;
  reason?: string | undefined;
  message?: string | undefined;
  bytes?: DownloadProgress | undefined;
  at: string;
}

interface Pending {
  id: string;
  document: UpdateManifestDocument;
}

const RECHECK_MS = 30_000;
const PROGRESS_EVERY_MS = 2_000;

export class UpdateDelivery implements RemoteExtension {
  private readonly o: UpdateDeliveryOptions;
  private readonly topics: ReturnType<typeof fleetTopics>;
  private readonly manifestTopics: Set<string>;
  private readonly timestampTopics: Set<string>;
  private readonly keeper: TimestampKeeper;
  private readonly clock: () => number;
  private pending: Pending | undefined;
  private download: Download | undefined;
  private downloading: string | undefined;
  private last: UpdateReport | undefined;
  private waitTimer: NodeJS.Timeout | undefined;
  private lastProgress = 0;
  private stopped = false;

  constructor(options: UpdateDeliveryOptions) {
    this.o = options;
    const c = options.context;
    this.topics = fleetTopics(c.prefix, c.device);
    this.manifestTopics = new Set([this.topics.update, ...c.groups.map((g) => this.topics.groupUpdate(g))]);
    this.timestampTopics = new Set([this.topics.updateTimestamp, ...c.groups.map((g) => this.topics.groupUpdateTimestamp(g))]);
    this.keeper = new TimestampKeeper(options.stateDir);
    this.clock = options.clock ?? updateClock();
  }

  subscriptions(): string[] {
    return [...this.manifestTopics, ...this.timestampTopics, this.topics.updateChunk];
  }

  handles(topic: string): boolean {
    return this.manifestTopics.has(topic) || this.timestampTopics.has(topic) || topic === this.topics.updateChunk;
  }

  connected(): void {
    this.download?.resend('reconnected');
  }

  status(): Record<string, unknown> {
    const newest = this.keeper.newest;
    const clock = this.clock();
    return {
      update_delivery: {
        state: this.last?.outcome ?? 'idle',
        ...(this.last?.version ? { version: this.last.version } : {}),
        ...(this.last?.reason ? { reason: this.last.reason } : {}),
        freeze: this.keeper.frozen(clock),
        timestamp: newest ? { version: newest.version, expires: newest.expires } : null,
        ...(this.download ? { bytes: { ...this.download.stats } } : {}),
      },
    };
  }

  handle(message: InboundMessage): void {
    if (this.stopped) return;
    if (message.topic === this.topics.updateChunk) {
      const frame = decodeFrame(message.payload);
      if (frame) this.download?.receive(frame);
      return;
    }
    if (message.payload.length === 0) {
      if (this.manifestTopics.has(message.topic)) this.withdraw();
      return;
    }
    if (this.manifestTopics.has(message.topic)) this.offerManifest(message);
    else this.offerTimestamp(message.payload);
  }

  oversize(message: { topic: string; bytes: number }): void {
    const reason: RefusalReason = message.topic === this.topics.updateChunk ? 'oversize' : 'malformed';
    const err = new Refusal(reason, `a message of ${message.bytes} bytes on ${message.topic} is over fleet.max_message_bytes`);
    if (this.download && message.topic === this.topics.updateChunk) this.download.fail(err);
    else this.refuse(err, this.pending);
  }

  private offerManifest(message: InboundMessage): void {
    const clock = this.clock();
    let document: UpdateManifestDocument;
    let id: string;
    try {
      const envelope: unknown = JSON.parse(message.payload.toString('utf8'));
      id = manifestId(String((envelope as { payload?: unknown }).payload ?? ''));
      if (this.pending?.id === id) return; // the same manifest again (a retained copy at reconnect)
      document = this.o.context.verifier.verify(envelope, 'update-manifest', new Date(this.keeper.now(clock))).document as UpdateManifestDocument;
      // A retained manifest seen again by the version it installed, or by a device where it failed: nothing to say.
      if (message.retained && (document.version === this.o.runningVersion || this.o.releases.isBroken(document.version))) return;
      // A manifest published anew for a version that failed here is the operator's decision to try it again.
      if (!message.retained && this.o.releases.isBroken(document.version)) this.o.releases.forgetBroken(document.version);
      checkManifest(
        document,
        {
          device: this.o.context.device,
          groups: this.o.context.groups,
          arch: this.o.arch,
          runningVersion: this.o.runningVersion,
          highestRelease: this.o.releases.highestReleaseCounter(),
          isBroken: (v) => this.o.releases.isBroken(v),
          maxBytes: this.o.settings.maxBytes,
        },
        () => {
          try {
            this.o.context.verifier.verifyRootThreshold?.(envelope, 'rollback manifest');
            return this.o.context.verifier.verifyRootThreshold !== undefined;
          } catch {
            return false;
          }
        },
      );
    } catch (err) {
      this.refuse(err, undefined);
      return;
    }
    if (this.downloading && this.downloading !== id) this.stopDownload();
    this.pending = { id, document };
    this.o.log.info({ version: document.version, release: document.release, size: document.size, manifest: id.slice(0, 16) }, 'update: manifest accepted');
    this.proceed();
  }

  private offerTimestamp(payload: Buffer): void {
    try {
      const envelope: unknown = JSON.parse(payload.toString('utf8'));
      this.keeper.accept(this.o.context.verifier as never, envelope, this.clock());
    } catch (err) {
      this.refuse(err, this.pending, 'update-timestamp');
      return;
    }
    this.proceed();
  }

  /** The next step for the pending manifest, if there is one and its timestamp is fresh. */
  private proceed(): void {
    const p = this.pending;
    if (!p || this.stopped || this.downloading === p.id) return;
    if (!this.keeper.vouches(p.id, this.clock())) {
      this.report(p, 'waiting_timestamp', {
        reason: 'stale_timestamp',
        message: this.keeper.frozen(this.clock())
          ? 'the newest timestamp expired: nothing is installed until a fresh one comes'
          : 'no timestamp for this manifest yet',
      });
      return;
    }
    void this.fetchAndInstall(p);
  }

  private async fetchAndInstall(p: Pending): Promise<void> {
    this.downloading = p.id;
    if (this.staged(p.document)) {
      // Killed after staging (or after the trial began) and started again as the old version: no download.
      this.o.log.info({ version: p.document.version }, 'update: already staged; going on to the trial');
      try {
        await this.install(p, undefined);
      } catch (err) {
        if (this.pending?.id === p.id && !this.stopped) this.refuse(err, p);
        this.downloading = undefined;
      }
      return;
    }
    const partPath = this.o.releases.stagingPath(p.document.version);
    const download = new Download({
      manifest: p.document,
      id: p.id,
      partPath,
      localSource: this.o.localSource,
      inFlight: this.o.settings.inFlight,
      retryMs: this.o.settings.retryMs,
      request: (object, chunks) => this.request(p.id, object, chunks),
      progress: (stats) => {
        if (Date.now() - this.lastProgress < PROGRESS_EVERY_MS) return;
        this.lastProgress = Date.now();
        this.report(p, 'downloading', { bytes: { ...stats } });
      },
      log: this.o.log,
    });
    this.download = download;
    this.report(p, 'downloading');
    try {
      await download.run();
      download.close();
      this.report(p, 'downloading', { bytes: { ...download.stats } });
      this.o.log.info({ version: p.document.version, ...download.stats }, 'update: download verified');
      await this.install(p, partPath);
    } catch (err) {
      download.stop();
      if (this.pending?.id === p.id && !this.stopped) this.refuse(err, p);
      if (this.downloading === p.id) this.downloading = undefined;
    }
  }

  private request(id: string, object: TransferObject, chunks: number[]): void {
    const v5 = this.o.context.protocolVersion === 5;
    void this.o.context.publish(this.topics.updateRequest, JSON.stringify({ manifest: id, object, chunks }), {
      ...(v5 ? { responseTopic: this.topics.updateChunk, correlationData: correlationOf(id) } : {}),
    });
  }

  /** Waits for the window, checks freshness once more, stages, begins the trial and restarts into it. */
  /** This manifest's executable is in the release store already (same SHA-256). */
  private staged(d: UpdateManifestDocument): boolean {
    const known = this.o.releases.state().releases[d.version];
    return known?.sha256 === d.sha256 && existsSync(this.o.releases.executablePath(d.version));
  }

  private async install(p: Pending, partPath: string | undefined): Promise<void> {
    for (;;) {
      if (this.stopped || this.pending?.id !== p.id) return;
      const clock = this.clock();
      if (!this.keeper.vouches(p.id, clock)) throw new Refusal('stale_timestamp', 'the timestamp expired before the update could be installed');
      if (Date.parse(p.document.expires) <= this.keeper.now(clock)) throw new Refusal('expired', `the manifest expired at ${p.document.expires}`);
      const wait = p.document.force ? undefined : this.o.settings.mustWait(new Date(clock));
      if (!wait) break;
      this.report(p, 'waiting_window', { message: wait });
      await new Promise<void>((resolve) => {
        this.waitTimer = setTimeout(resolve, RECHECK_MS);
        this.waitTimer.unref();
      });
    }
    const d = p.document;
    if (partPath !== undefined) {
      this.o.releases.stage(d.version, partPath, { releaseCounter: d.release, sha256: d.sha256, arch: d.arch as ReleaseArch, allowOlder: d.rollback });
      removeDownloadFiles(partPath);
    }
    this.o.releases.beginTrial(d.version, this.o.settings.trialDeadlineMs);
    this.report(p, 'installing', { message: `version ${d.version} staged; restarting into its trial` });
    this.o.log.warn({ version: d.version, release: d.release }, 'update: staged and in trial; restarting into the new version');
    this.o.restartIntoTrial(d.version);
  }

  private withdraw(): void {
    const p = this.pending;
    if (!p) return;
    this.stopDownload();
    this.pending = undefined;
    this.report(p, 'withdrawn');
  }

  private stopDownload(): void {
    this.download?.stop();
    this.download = undefined;
    this.downloading = undefined;
    clearTimeout(this.waitTimer);
  }

  private refuse(err: unknown, p: Pending | undefined, kind = 'update'): void {
    const refusal = refusalOf(err);
    const reason = refusal?.reason ?? 'malformed';
    const message = refusal?.message ?? describeError(err);
    if (!refusal && !isRefusal(err)) this.o.log.error({ err: describeError(err) }, 'update: step failed');
    this.o.context.refused(kind, reason);
    this.o.log.warn({ reason, detail: message, version: p?.document.version }, 'update refused');
    this.report(p, refusal ? 'refused' : 'failed', { reason, message });
  }

  private report(p: Pending | undefined, outcome: UpdateOutcome, extra: Partial<UpdateReport> = {}): void {
    this.last = {
      ...(p ? { manifest: p.id.slice(0, 16), version: p.document.version, release: p.document.release } : {}),
      outcome,
      ...extra,
      at: new Date().toISOString(),
    };
    void this.o.context.publish(this.topics.updateReport, JSON.stringify(this.last), { retain: true });
    this.o.context.statusChanged();
  }

  stop(): void {
    this.stopped = true;
    this.stopDownload();
  }
}
