/**
 * The endpoint's routes (docs/observability.md). Everything is read-only but the actions and the tap, which
 * need the local token (token.ts): in an `Authorization: Bearer` header, or for the page's forms (which work
 * without JavaScript) in a `token` form field. Actions also refuse cross-origin requests: a browser's
 * `Sec-Fetch-Site` must say same-origin (or none, typed by hand) and an `Origin`, when sent, must be this
 * host. While the endpoint listens on loopback, a request whose Host is not a loopback name is refused: a
 * web page elsewhere cannot reach the agent by DNS rebinding.
 */
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { RunningAgent } from '../runtime/running-agent.ts';
import { uplotAsset } from './assets.ts';
import { exposition, EXPOSITION_CONTENT_TYPE } from './exposition.ts';
import { PAGE_CSS, renderPage } from './page.ts';
import { PAGE_SCRIPT } from './page-script.ts';
import { readiness } from './readiness.ts';
import { type Answer, html, json, redirect, type Request, Router, serve, text, typed } from './router.ts';
import { type StatusContext, statusSnapshot } from './status-view.ts';
import { tapStream } from './tap-stream.ts';
import { tokenMatches } from './token.ts';
import type { IncomingMessage, RequestListener } from 'node:http';

export interface RouteContext extends StatusContext {
  agent: RunningAgent;
  token: string;
  log: Logger;
  loopback: boolean;
  pollMs: number;
  tapMaxBytes: number;
  secrets: () => readonly string[];
  pause(on: boolean): void;
}

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;
const ACTIONS = ['flush', 'pause', 'resume'] as const;
/** An action's form is one field: a larger body is refused before it is read. */
const MAX_ACTION_BODY = 4096;
/** Taps open at once: each may hold 64 KiB for its reader (tap-stream.ts). */
const MAX_TAPS = 4;
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the page's own form posts.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

export function routes(ctx: RouteContext): RequestListener {
  const router = new Router()
    .get('/livez', () => text('ok\n'))
    .get('/readyz', () => {
      const r = readiness(ctx.agent.telemetry, ctx.sink, ctx.settings);
      return json(r, r.ready ? 200 : 503);
    })
    .get('/metrics', () => typed(exposition(ctx.agent.telemetry.collect()), EXPOSITION_CONTENT_TYPE))
    .get('/api/status', () => json(statusSnapshot(ctx)))
    .get('/api/history', () => json(ctx.history.series()))
    .get('/', (req) => {
      const given = req.query.get('token') ?? undefined;
      const token = given !== undefined && tokenMatches(ctx.token, given) ? given : undefined;
      return html(renderPage(statusSnapshot(ctx), { token, history: ctx.history.series(), pollMs: ctx.pollMs }));
    })
    .get('/assets/uplot.js', () => typed(uplotAsset('uplot.js'), 'text/javascript; charset=utf-8'))
    .get('/assets/uplot.css', () => typed(uplotAsset('uplot.css'), 'text/css; charset=utf-8'))
    .get('/assets/page.js', () => typed(PAGE_SCRIPT, 'text/javascript; charset=utf-8'))
    .get('/assets/page.css', () => typed(PAGE_CSS, 'text/css; charset=utf-8'))
    .postUnder('/actions/', (req) => action(ctx, req))
    .get('/api/tap', (req) => tap(ctx, req));
  return serve(router, {
    always: SECURITY_HEADERS,
    before: (req) =>
      ctx.loopback && !LOOPBACK_HOST.test(req.header('host') ?? '') ? text('this endpoint answers to loopback host names only\n', 421) : undefined,
    onError: (err) => {
      ctx.log.warn({ err: describeError(err) }, 'the endpoint could not answer a request');
      return text('internal error\n', 500);
    },
  });
}

async function action(ctx: RouteContext, req: Request): Promise<Answer> {
  const name = req.rest as (typeof ACTIONS)[number];
  if (!ACTIONS.includes(name)) return json({ error: `unknown action ${name}` }, 404);
  const crossOrigin = crossOriginReason(req);
  if (crossOrigin) return json({ error: crossOrigin }, 403);
  if (Number(req.header('content-length') ?? 0) > MAX_ACTION_BODY || req.header('transfer-encoding') !== undefined) {
    return json({ error: `an action's body is at most ${MAX_ACTION_BODY} bytes, with a Content-Length` }, 413);
  }
  const body = await readBody(req.raw);
  const formToken = (req.header('content-type') ?? '').includes('application/x-www-form-urlencoded')
    ? (new URLSearchParams(body).get('token') ?? undefined)
    : undefined;
  const given = bearer(req) ?? formToken;
  if (!tokenMatches(ctx.token, given)) return json({ error: 'actions need the token (edge-agent status --token)' }, 401);
  try {
    if (name === 'flush') await ctx.agent.queue.flush();
    else ctx.pause(name === 'pause');
  } catch (err) {
    return json({ error: describeError(err) }, 500);
  }
  ctx.log.info({ action: name }, 'status page action');
  // A form (no script) goes back to the page; a client that asked for JSON gets the outcome.
  if (formToken !== undefined) return redirect(`/?token=${encodeURIComponent(formToken)}`);
  return json({ ok: true, action: name });
}

function tap(ctx: RouteContext, req: Request): Answer {
  if (!tokenMatches(ctx.token, bearer(req))) return json({ error: 'the tap shows records: it needs the token (edge-agent status --token)' }, 401);
  const stream = req.query.get('stream');
  if (!stream) return json({ error: 'stream= is required' }, 400);
  const asked = Number(req.query.get('max_bytes') ?? ctx.tapMaxBytes);
  const maxBytes = Number.isFinite(asked) && asked > 0 ? Math.min(asked, ctx.tapMaxBytes) : ctx.tapMaxBytes;
  if (ctx.agent.telemetry.tap.listening >= MAX_TAPS) return json({ error: `${MAX_TAPS} taps are open already` }, 429);
  return {
    headers: { 'content-type': 'application/x-ndjson; charset=utf-8' },
    stream: (res) => {
      const stop = tapStream({ tap: ctx.agent.telemetry.tap, stream, maxBytes, secrets: ctx.secrets() }, res);
      res.once('close', stop);
    },
  };
}

/** The body of a request whose Content-Length was checked (at most MAX_ACTION_BODY): node:http holds it to that length. */
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

function bearer(req: Request): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(req.header('authorization') ?? '');
  return m?.[1];
}

/** Why a state-changing request is refused as cross-origin, or undefined when it may go on. */
function crossOriginReason(req: Request): string | undefined {
  const site = req.header('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-origin request refused (Sec-Fetch-Site: ${site})`;
  const origin = req.header('origin');
  if (origin !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== req.header('host')) return `cross-origin request refused (Origin: ${origin})`;
  }
  return undefined;
}
