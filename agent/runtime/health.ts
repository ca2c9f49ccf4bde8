/**
 * The health gate after a new configuration: every source running, the sink connected, and one batch
 * acknowledged after the apply. When nothing waits to be sent, a canary record on stream `_canary` makes a
 * batch, so a quiet device proves its sink all the same. Fail closed: a check not met by the deadline fails.
 */
import type { Queue } from '../queue/queue.ts';
import { delay } from '../util/backoff.ts';

export type HealthResult = { ok: true } | { ok: false; failed: 'sources' | 'sink' | 'canary'; detail: string };

/** The stream of canary records; a name the config cannot give a stream (it starts with `_`). */
export const CANARY_STREAM = '_canary';

/** What the gate reads, from the parts running at the time of each look (an apply may replace them). */
export interface HealthView {
  sources(): { name: string; state: string }[];
  sinkConnected(): boolean;
  lastDeliveredAt(): number;
  queue(): Queue | undefined;
}

const POLL_MS = 50;

export async function healthGate(view: HealthView, sinceMs: number, deadlineMs: number, label: string): Promise<HealthResult> {
  const end = Date.now() + deadlineMs;
  let canary = false;
  for (;;) {
    const sources = view.sources();
    const notRunning = sources.filter((s) => s.state !== 'running');
    const failed: HealthResult[] = [];
    if (notRunning.length > 0) failed.push({ ok: false, failed: 'sources', detail: notRunning.map((s) => `${s.name}: ${s.state}`).join(', ') });
    if (!view.sinkConnected()) failed.push({ ok: false, failed: 'sink', detail: 'the sink is not connected' });
    const delivered = view.lastDeliveredAt() >= sinceMs;
    if (!delivered) {
      const queue = view.queue();
      if (!canary && queue && !queue.hasUnsent()) {
        canary = true;
        // Not awaited: the commit resolves it, and the gate looks for the acknowledgement, not the commit.
        queue.enqueue(CANARY_STREAM, [{ kind: 'canary', config: label }]).catch(() => {});
      }
      failed.push({ ok: false, failed: 'canary', detail: `no batch acknowledged within ${deadlineMs} ms of the apply` });
    }
    if (failed.length === 0) return { ok: true };
    // A source left failed (on_start_error: fail) or off (ignore) will not come back by itself: no point waiting.
    const stuck = notRunning.filter((s) => s.state === 'failed' || s.state === 'off' || s.state === 'stopped');
    if (stuck.length > 0) return { ok: false, failed: 'sources', detail: stuck.map((s) => `${s.name}: ${s.state}`).join(', ') };
    if (Date.now() >= end) return failed[0]!;
    await delay(Math.min(POLL_MS, Math.max(1, end - Date.now())));
  }
}
