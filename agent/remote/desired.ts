/**
 * The retained desired-config and trust topics: `<p>/<device>/config`, `<p>/group/<g>/config` for each group,
 * `<p>/trust/root` and `<p>/trust/revocations`. A config document is verified (trust chain), checked to be
 * for this device or this group (`wrong_target` otherwise), then handed to the pipeline one at a time; the
 * pipeline's report, or our refusal, is published retained on `<p>/<device>/config/report`.
 */
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { InboundMessage } from './channel.ts';
import type { FleetTopics } from './topics.ts';
import { Refusal } from '../trust/index.ts';
import { refusalOf, type ApplyReport, type DesiredConfigPipeline, type RefusalReason, type Verifier } from './seams.ts';

export interface DesiredConfigOptions {
  device: string;
  groups: readonly string[];
  topics: FleetTopics;
  verifier: Verifier;
  pipeline: DesiredConfigPipeline;
  publishReport(report: ApplyReport): Promise<void>;
  refused(kind: string, reason: RefusalReason): void;
  log: Logger;
}

type Layer = { layer: string; target: { device: string } | { group: string } };

export class DesiredConfig {
  private readonly o: DesiredConfigOptions;
  private readonly layers = new Map<string, Layer>();
  /** Applies one at a time, in arrival order: two configs never apply over each other. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(options: DesiredConfigOptions) {
    this.o = options;
    this.layers.set(options.topics.config, { layer: 'device', target: { device: options.device } });
    for (const group of options.groups) this.layers.set(options.topics.group(group), { layer: `group:${group}`, target: { group } });
  }

  subscriptions(): string[] {
    return [...this.layers.keys(), this.o.topics.root, this.o.topics.revocations];
  }

  handles(topic: string): boolean {
    return this.layers.has(topic) || topic === this.o.topics.root || topic === this.o.topics.revocations;
  }

  oversize(message: { topic: string; bytes: number }): void {
    this.refuse(message.topic, 'malformed', `message of ${message.bytes} bytes is over fleet.max_message_bytes`);
  }

  handle(message: InboundMessage): void {
    // An empty retained message clears the topic: the operator withdrew the document; the committed config stays.
    if (message.payload.length === 0) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message.payload.toString('utf8'));
    } catch {
      this.refuse(message.topic, 'malformed', 'not JSON');
      return;
    }
    const now = new Date();
    if (message.topic === this.o.topics.root || message.topic === this.o.topics.revocations) {
      const kind = message.topic === this.o.topics.root ? 'root' : 'revocations';
      try {
        // The trust chain takes a root chain given as an array itself.
        const { changed } = kind === 'root' ? this.o.verifier.acceptRoot(parsed, now) : this.o.verifier.acceptRevocations(parsed, now);
        if (changed) this.o.log.info({ kind }, 'trust metadata accepted');
      } catch (err) {
        this.trustRefused(kind, err);
      }
      return;
    }
    const layer = this.layers.get(message.topic);
    if (layer) void this.offer(layer, parsed, message.retained);
  }

  /** A config envelope from the config topics or from a `config.apply` command: the same path. */
  apply(envelope: unknown): Promise<ApplyReport> {
    const layer = this.layerOf(envelope);
    if (!layer) {
      const report = this.refusedReport('device', undefined, 'wrong_target', 'the document targets neither this device nor one of its groups');
      return this.chain.then(() => this.o.publishReport(report)).then(() => report);
    }
    return this.offer(layer, envelope);
  }

  private layerOf(envelope: unknown): Layer | undefined {
    try {
      const { document } = this.o.verifier.verify(envelope, 'config', new Date());
      const t = document.target;
      if (t?.device === this.o.device) return this.layers.get(this.o.topics.config);
      if (typeof t?.group === 'string' && this.o.groups.includes(t.group)) return this.layers.get(this.o.topics.group(t.group));
    } catch {
      // offer() verifies again and reports the refusal with its reason.
      return this.layers.get(this.o.topics.config);
    }
    return undefined;
  }

  /**
   * `redelivered`: the broker handed us its retained copy at subscribe (every reconnect); when nothing changes,
   * the retained report of the real apply stays instead of being replaced by an `unchanged` one.
   */
  private offer(layer: Layer, envelope: unknown, redelivered = false): Promise<ApplyReport> {
    const next = this.chain.then(() => this.offerNow(layer, envelope, redelivered));
    this.chain = next.catch(() => {});
    return next;
  }

  private async offerNow(layer: Layer, envelope: unknown, redelivered: boolean): Promise<ApplyReport> {
    let report: ApplyReport;
    let version: number | undefined;
    try {
      const { document, signer } = this.o.verifier.verify(envelope, 'config', new Date());
      version = typeof document.version === 'number' ? document.version : undefined;
      const t = document.target ?? {};
      const wanted = layer.target;
      const matches = 'device' in wanted ? t.device === wanted.device : t.group === wanted.group;
      if (!matches) throw new Refusal('wrong_target', `the document targets ${JSON.stringify(t)}, this topic is for ${JSON.stringify(wanted)}`);
      report = await this.o.pipeline.offer(layer.layer, document, signer, envelope, { redelivered });
    } catch (err) {
      const refusal = refusalOf(err);
      if (!refusal) this.o.log.error({ err: describeError(err), layer: layer.layer }, 'desired config could not be handled');
      report = this.refusedReport(layer.layer, version, refusal?.reason ?? 'malformed', refusal?.message ?? describeError(err));
      // Refusals past verification (version floor, schema) the pipeline counts itself.
      this.o.refused('config', report.reason as RefusalReason);
    }
    if (report.outcome === 'unchanged' && redelivered) return report;
    this.o.log[report.outcome === 'committed' || report.outcome === 'unchanged' ? 'info' : 'warn']({ report }, 'desired config');
    await this.o.publishReport(report);
    return report;
  }

  private refusedReport(layer: string, version: number | undefined, reason: RefusalReason, message: string): ApplyReport {
    return {
      layer,
      ...(version === undefined ? {} : { version }),
      outcome: 'refused',
      reason,
      message,
      at: new Date().toISOString(),
      effective: this.o.pipeline.effective().version,
    };
  }

  private refuse(topic: string, reason: RefusalReason, message: string): void {
    const layer = this.layers.get(topic);
    if (!layer) {
      this.trustRefused(topic === this.o.topics.root ? 'root' : 'revocations', new Refusal(reason, message));
      return;
    }
    this.o.refused('config', reason);
    const report = this.refusedReport(layer.layer, undefined, reason, message);
    this.o.log.warn({ report }, 'desired config refused');
    this.chain = this.chain.then(() => this.o.publishReport(report)).catch(() => {});
  }

  private trustRefused(kind: string, err: unknown): void {
    const refusal = refusalOf(err) ?? { reason: 'malformed' as const, message: describeError(err) };
    this.o.refused(kind, refusal.reason);
    this.o.log.warn({ kind, reason: refusal.reason, detail: refusal.message }, 'trust metadata refused');
  }

  /** Resolves when every offer taken so far has been handled. */
  idle(): Promise<unknown> {
    return this.chain;
  }
}
