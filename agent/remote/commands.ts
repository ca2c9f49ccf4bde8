/**
 * Requests on `<p>/<device>/cmd`: a plain `{action, args?, id?}` for read-only actions (when allowed), or a
 * signed command envelope for anything. Every request gets an answer on the address it gave (MQTT 5 response
 * topic and correlation data) or on `<p>/<device>/cmd/res` with its id; nothing a request holds (bytes that
 * are not JSON, wrong types, unknown actions, a huge payload) gets further than a refusal response and a count.
 *
 * A signed command's nonce is claimed in the queue file before it runs (so a replay is refused, across
 * restarts); it is answered `accepted`, then with one terminal state, `expired` if its document's expiry comes
 * first. A command cut short by the end of the process is answered `interrupted` at the next start.
 */
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { checkArgs, isKnownAction, MUTATING_ACTIONS } from './actions.ts';
import type { InboundMessage } from './channel.ts';
import type { CommandState, CommandStore, ReplyAddress } from './command-store.ts';
import { Refusal } from '../trust/index.ts';
import { refusalOf, type RefusalReason, type SignedDocument, type Verifier } from './seams.ts';

/** A command's document may be valid for at most this long, so the nonce table holds at most an hour of commands. */
export const MAX_COMMAND_VALIDITY_MS = 3_600_000;

export interface CommandResponse {
  id: string | number | null;
  action: string | null;
  state: CommandState;
  reason?: string;
  message?: string;
  result?: unknown;
}

/** Runs one action; throws a refusal (refused) or any error (failed). */
export type ActionRunner = (action: string, args: Record<string, unknown>) => Promise<unknown>;

export interface CommandHandlerOptions {
  device: string;
  responseTopic: string;
  allowUnsignedReads: boolean;
  verifier: Verifier;
  store: CommandStore;
  run: ActionRunner;
  publish(reply: ReplyAddress, payload: string): Promise<void>;
  refused(reason: RefusalReason): void;
  /** After the terminal response of these actions went out (restart). */
  after?(action: string): void;
  log: Logger;
  now?: () => number;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isEnvelope = (v: Record<string, unknown>) => 'payloadType' in v || 'signatures' in v || 'payload' in v;

export class CommandHandler {
  private readonly o: CommandHandlerOptions;
  private readonly now: () => number;
  /** Answers for commands cut short by the previous run, sent at the first connect. */
  private interrupted: { reply: ReplyAddress; response: CommandResponse }[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(options: CommandHandlerOptions) {
    this.o = options;
    this.now = options.now ?? Date.now;
    for (const cmd of options.store.unfinished()) {
      const response: CommandResponse = {
        id: cmd.nonce,
        action: cmd.action,
        state: 'interrupted',
        message: 'the agent ended (stopped, killed or restarted) before the command finished',
      };
      if (options.store.finish(cmd.nonce, 'interrupted', response)) this.interrupted.push({ reply: cmd.reply, response });
    }
    if (this.interrupted.length > 0) options.log.warn({ commands: this.interrupted.length }, 'commands cut short by the previous run marked interrupted');
    options.store.purge(this.now());
  }

  /** On every connect: the interrupted answers still owed. */
  async connected(): Promise<void> {
    const owed = this.interrupted;
    this.interrupted = [];
    for (const { reply, response } of owed) await this.o.publish(reply, JSON.stringify(response));
    this.o.store.purge(this.now());
  }

  private replyOf(message: Pick<InboundMessage, 'responseTopic' | 'correlationData'>): ReplyAddress {
    return message.responseTopic ? { topic: message.responseTopic, correlation: message.correlationData } : { topic: this.o.responseTopic };
  }

  private async answer(reply: ReplyAddress, response: CommandResponse): Promise<void> {
    await this.o.publish(reply, JSON.stringify(response));
  }

  private async refuse(reply: ReplyAddress, id: CommandResponse['id'], action: string | null, reason: RefusalReason, message: string): Promise<void> {
    this.o.refused(reason);
    this.o.log.warn({ reason, action, id, detail: message }, 'command refused');
    await this.answer(reply, { id, action, state: 'refused', reason, message });
  }

  async oversize(message: Omit<InboundMessage, 'payload'> & { bytes: number }): Promise<void> {
    await this.refuse(this.replyOf(message), null, null, 'malformed', `request of ${message.bytes} bytes is over fleet.max_message_bytes`);
  }

  async handle(message: InboundMessage): Promise<void> {
    const reply = this.replyOf(message);
    let request: unknown;
    try {
      request = JSON.parse(message.payload.toString('utf8'));
    } catch {
      return this.refuse(reply, null, null, 'malformed', 'request is not JSON');
    }
    if (!isRecord(request)) return this.refuse(reply, null, null, 'malformed', 'request is not a JSON object');
    if (isEnvelope(request)) return this.signed(request, reply);
    return this.plain(request, reply);
  }

  private async plain(request: Record<string, unknown>, reply: ReplyAddress): Promise<void> {
    const id = typeof request.id === 'string' || typeof request.id === 'number' ? request.id : null;
    const action = typeof request.action === 'string' ? request.action.slice(0, 100) : null;
    if (request.id !== undefined && id === null) return this.refuse(reply, null, action, 'malformed', 'id must be a string or a number');
    if (action === null) return this.refuse(reply, id, null, 'malformed', 'action must be a string');
    if (request.args !== undefined && !isRecord(request.args)) return this.refuse(reply, id, action, 'malformed', 'args must be an object');
    if (!isKnownAction(action)) return this.refuse(reply, id, action, 'unsupported', `unknown action ${JSON.stringify(action)}`);
    if (MUTATING_ACTIONS.has(action)) return this.refuse(reply, id, action, 'bad_signature', `${action} changes the device: it must be a signed command`);
    if (!this.o.allowUnsignedReads)
      return this.refuse(reply, id, action, 'bad_signature', 'unsigned requests are not allowed (fleet.allow_unsigned_reads: false)');
    try {
      const result = await this.o.run(action, (request.args as Record<string, unknown>) ?? {});
      await this.answer(reply, { id, action, state: 'done', result });
    } catch (err) {
      await this.answer(reply, { id, action, state: 'failed', message: describeError(err) });
    }
  }

  private async signed(envelope: Record<string, unknown>, reply: ReplyAddress): Promise<void> {
    const now = this.now();
    const peek = peekDocument(envelope);
    let id: CommandResponse['id'] = typeof peek?.nonce === 'string' ? peek.nonce.slice(0, 128) : null;
    let action = typeof peek?.action === 'string' ? peek.action.slice(0, 100) : null;
    let document: SignedDocument;
    try {
      document = this.o.verifier.verify(envelope, 'command', new Date(now)).document;
      const checked = this.checkDocument(document, now);
      id = checked.nonce;
      action = checked.action;
      checkArgs(checked.action, checked.args);
    } catch (err) {
      const refusal = refusalOf(err);
      if (refusal) return this.refuse(reply, id, action, refusal.reason, refusal.message);
      this.o.log.error({ err: describeError(err) }, 'command verification failed unexpectedly');
      return this.refuse(reply, id, action, 'malformed', 'the command could not be checked');
    }
    const { nonce, args, deadline } = this.checkDocument(document, now);
    if (!this.o.store.claim(nonce, action, deadline, reply, now))
      return this.refuse(reply, nonce, action, 'replayed', 'this command (its nonce) was seen before');
    await this.answer(reply, { id: nonce, action, state: 'accepted' });
    await this.execute(nonce, action, args, deadline, reply);
  }

  /** What the trust chain does not check: the target, the nonce, the action, the validity window. */
  private checkDocument(d: SignedDocument, now: number) {
    if (typeof d.action !== 'string') throw new Refusal('malformed', 'command.action must be a string');
    if (typeof d.nonce !== 'string' || !/^[0-9a-f]{32,128}$/.test(d.nonce))
      throw new Refusal('malformed', 'command.nonce must be 16 to 64 random bytes in hex');
    if (d.args !== undefined && !isRecord(d.args)) throw new Refusal('malformed', 'command.args must be an object');
    if (!isRecord(d.target) || typeof d.target.device !== 'string') throw new Refusal('malformed', 'command.target must be {device: id}');
    if (d.target.device !== this.o.device) throw new Refusal('wrong_target', `the command is for device ${JSON.stringify(d.target.device)}`);
    if (!isKnownAction(d.action)) throw new Refusal('unsupported', `unknown action ${JSON.stringify(d.action)}`);
    const issued = Date.parse(String(d.issued));
    const expires = Date.parse(String(d.expires));
    if (!Number.isFinite(issued) || !Number.isFinite(expires)) throw new Refusal('malformed', 'command.issued and command.expires must be RFC 3339 times');
    if (expires - issued > MAX_COMMAND_VALIDITY_MS) throw new Refusal('expired', 'a command may be valid for at most 1 h (expires − issued)');
    if (expires <= now) throw new Refusal('expired', `the command expired at ${d.expires}`);
    return { nonce: d.nonce, action: d.action, args: (d.args ?? {}) as Record<string, unknown>, deadline: expires };
  }

  private async execute(nonce: string, action: string, args: Record<string, unknown>, deadline: number, reply: ReplyAddress): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const expiry = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), Math.max(0, deadline - this.now()));
      timer.unref();
      this.timers.add(timer);
    });
    const work = this.o.run(action, args).then(
      (result): CommandResponse => ({ id: nonce, action, state: 'done', ...(result === undefined ? {} : { result }) }),
      (err: unknown): CommandResponse => {
        const refusal = refusalOf(err);
        return refusal
          ? { id: nonce, action, state: 'failed', reason: refusal.reason, message: refusal.message }
          : { id: nonce, action, state: 'failed', message: describeError(err) };
      },
    );
    const first = await Promise.race([work, expiry]);
    clearTimeout(timer);
    this.timers.delete(timer!);
    const response: CommandResponse =
      first === 'expired' ? { id: nonce, action, state: 'expired', message: 'the command did not finish before its document expired' } : first;
    if (this.o.store.finish(nonce, response.state, response)) await this.answer(reply, response);
    if (first === 'expired') void work.catch(() => {});
    else this.o.after?.(action);
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

/** The document's nonce and action before verification, only to label the answer to a refused one. */
function peekDocument(envelope: Record<string, unknown>): Record<string, unknown> | undefined {
  if (typeof envelope.payload !== 'string' || envelope.payload.length > 400_000) return undefined;
  try {
    const doc: unknown = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'));
    return isRecord(doc) ? doc : undefined;
  } catch {
    return undefined;
  }
}
