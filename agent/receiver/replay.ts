/**
 * Replaying the dead-letter store (`edge-agent dead-letter replay`): each chosen batch goes through the
 * receiver again (authentication, decryption, the limits as configured now) to its output; written, it leaves
 * the store; refused again, it stays with the new reason and one more attempt counted. No dedup: the batch
 * was marked taken when it was set aside, and it leaves the store only once written, so it is written once
 * (a crash between the two repeats it in the output, as the receiver itself may).
 */
import type { KeyExchange } from '../keys/x25519.ts';
import type { LoadedConfig } from '../config/load.ts';
import { configPaths } from '../config/paths.ts';
import { AgentError, describeError } from '../errors.ts';
import { loadPrivateKey } from '../keys/keys.ts';
import type { Logger } from '../log.ts';
import { Telemetry } from '../telemetry/registry.ts';
import { DeadLetterStore } from './dead-letter.ts';
import { DedupState } from './dedup.ts';
import { limitsOf } from './heap.ts';
import { loadDevices } from './devices.ts';
import type { RecordOutput } from './output.ts';
import { primaryOutput } from './outputs/index.ts';
import { Receiver } from './receiver.ts';

export interface ReplayOutcome {
  id: number;
  outcome: 'written' | 'refused' | 'missing';
  /** Why it was refused again (a stable code). */
  reason?: string;
}

/** The receiver section of a config, or a clear error for a config without one. */
function receiverSection(loaded: LoadedConfig) {
  const section = loaded.config.receiver;
  if (!section) throw new AgentError('CONFIG_INVALID', `${loaded.origin}: receiver: the dead-letter commands need a receiver section`);
  return section;
}

/** Opens the store the config's receiver uses. */
export function openDeadLetters(loaded: LoadedConfig): DeadLetterStore {
  const section = receiverSection(loaded);
  return new DeadLetterStore(configPaths(loaded).fromData(section.dead_letter.path), section.dead_letter.max_bytes);
}

export async function replayDeadLetters(
  kx: KeyExchange,
  loaded: LoadedConfig,
  ids: number[] | 'all',
  log: Logger,
  options: { output?: RecordOutput } = {},
): Promise<ReplayOutcome[]> {
  const section = receiverSection(loaded);
  const paths = configPaths(loaded);
  const store = openDeadLetters(loaded);
  const dedup = new DedupState(paths.fromData(section.state), section.dedup_window, {
    epochs: section.dedup_epochs,
    streamsPerDevice: section.max_streams_per_device,
    retentionMs: section.dedup_retention,
  });
  const output = options.output ?? (await primaryOutput(section, paths.baseDir, log));
  try {
    const telemetry = new Telemetry();
    const centreKeys = [section.private_key, ...section.extra_private_keys].map((p) => loadPrivateKey(kx, paths.fromBase(p)));
    const devices = loadDevices(
      kx,
      section.devices.map((d) => ({ id: d.id, files: d.public_keys.map((p) => paths.fromBase(p)) })),
      log,
      telemetry,
    );
    const limits = limitsOf(section);
    const receiver = new Receiver(kx, centreKeys, devices, dedup, output, log, undefined, {
      maxEnvelopeBytes: limits.maxEnvelopeBytes,
      limits,
      telemetry,
      replay: true,
    });
    const chosen = ids === 'all' ? store.list().map((e) => e.id) : ids;
    const outcomes: ReplayOutcome[] = [];
    for (const id of chosen) {
      const entry = store.get(id);
      const envelope = store.envelope(id);
      if (!entry || !envelope) {
        outcomes.push({ id, outcome: 'missing' });
        continue;
      }
      const before = receiver.stats();
      try {
        await receiver.handle({ bytes: envelope, origin: entry.origin });
      } catch (err) {
        // The output failed: this batch stays, and so do the rest (the output is the same for them).
        throw new AgentError('OUTPUT_FAILED', `replay of dead letter ${id} stopped: ${describeError(err)}`, { cause: err });
      }
      const after = receiver.stats();
      if (after.accepted > before.accepted) {
        store.remove(id);
        outcomes.push({ id, outcome: 'written' });
        continue;
      }
      const reason = Object.keys(after.rejected).find((code) => after.rejected[code] !== before.rejected[code]) ?? 'REFUSED';
      store.failedAgain(id, reason, `replay refused: ${reason}`);
      outcomes.push({ id, outcome: 'refused', reason });
    }
    return outcomes;
  } finally {
    await output.close();
    dedup.close();
    store.close();
  }
}
