/**
 * The desired-config pipeline (config-pipeline.ts) as remote control's seam: layers named as on the report
 * (`device`, `group:<g>`), the effective config read from the running agent, and reports the pipeline makes
 * on its own (a SIGHUP reload of the local file) handed on so they are published too.
 */
import type { RunningAgent } from '../runtime/agent.ts';
import type { ConfigPipeline, ConfigReport, LayerRef } from './config-pipeline.ts';
import type { ApplyReport, DesiredConfigPipeline, SignedDocument } from './seams.ts';

export class PipelineAdapter implements DesiredConfigPipeline {
  private readonly pipeline: ConfigPipeline;
  private readonly agent: RunningAgent;
  private last: ApplyReport | undefined;
  private offering = 0;
  private readonly unsubscribe: () => void;

  /** `own`: reports not asked for through `offer` (a local reload), for remote control to publish. */
  constructor(pipeline: ConfigPipeline, agent: RunningAgent, own: (report: ApplyReport) => void, interrupted?: ConfigReport) {
    this.pipeline = pipeline;
    this.agent = agent;
    this.last = interrupted;
    this.unsubscribe = pipeline.onReport((report) => {
      this.last = report;
      if (this.offering === 0) own(report);
    });
  }

  async offer(
    layer: string,
    document: SignedDocument,
    signer: { keyId: string; name: string },
    envelope: unknown,
    options: { redelivered?: boolean } = {},
  ): Promise<ApplyReport> {
    const ref: LayerRef = layer === 'device' ? { kind: 'device' } : { kind: 'group', name: layer.slice('group:'.length) };
    this.offering++;
    try {
      return await this.pipeline.offer(ref, { version: document.version as number, config: document.config, raw: JSON.stringify(envelope) }, signer, options);
    } finally {
      this.offering--;
    }
  }

  /** Like an offer, the caller publishes the report (remote control, answering `config.rollback`). */
  async rollback(): Promise<ApplyReport> {
    this.offering++;
    try {
      return await this.pipeline.rollback();
    } finally {
      this.offering--;
    }
  }

  effective() {
    return { config: this.agent.loaded.config, version: this.pipeline.effectiveVersion(), layers: this.pipeline.layers() };
  }

  lastReport(): ApplyReport | undefined {
    return this.last;
  }

  close(): void {
    this.unsubscribe();
  }
}
