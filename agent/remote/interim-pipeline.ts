/**
 * Stands in for the desired-config pipeline (agent/remote/config-*.ts) until it is wired: the effective config
 * is the local file, and every offered document is refused as `unsupported`, reported like any refusal.
 */
import { createHash } from 'node:crypto';
import type { LoadedConfig } from '../config/load.ts';
import type { ApplyReport, DesiredConfigPipeline } from './seams.ts';

export class LocalOnlyPipeline implements DesiredConfigPipeline {
  private readonly loaded: LoadedConfig;
  private last: ApplyReport | undefined;

  constructor(loaded: LoadedConfig) {
    this.loaded = loaded;
  }

  effective() {
    const sha = createHash('sha256').update(JSON.stringify(this.loaded.config)).digest('hex').slice(0, 8);
    return { config: this.loaded.config, version: sha, layers: [{ source: 'local', sha }] };
  }

  async offer(layer: string, document: { version?: number }): Promise<ApplyReport> {
    this.last = {
      layer,
      version: document.version,
      outcome: 'refused',
      reason: 'unsupported',
      message: 'this build does not apply remote configuration',
      at: new Date().toISOString(),
      effective: this.effective().version,
    };
    return this.last;
  }

  lastReport(): ApplyReport | undefined {
    return this.last;
  }
}
