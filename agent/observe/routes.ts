/**
 * The endpoint's routes (docs/observability.md). Everything is read-only but the actions and the tap, which
 * need the local token (token.ts): in an `Authorization: Bearer` header, or for the page's forms (which work
 * without JavaScript) in a `token` form field. Actions also refuse cross-origin requests: a browser's
 * `Sec-Fetch-Site` must say same-origin (or none, typed by hand) and an `Origin`, when sent, must be this
 * host. While the endpoint listens on loopback, a request whose Host is not a loopback name is refused: a
 * web page elsewhere cannot reach the agent by DNS rebinding.
 */
import { Hono, type Context } from 'hono';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { RunningAgent } from '../runtime/running-agent.ts';
import { uplotAsset } from './assets.ts';
import { exposition, EXPOSITION_CONTENT_TYPE } from './exposition.ts';
import { PAGE_CSS, renderPage } from './page.ts';
import { PAGE_SCRIPT } from './page-script.ts';
import { readiness } from './readiness.ts';
import { type StatusContext, statusSnapshot } from './status-view.ts';
import { tapStream } from './tap-stream.ts';
import { tokenMatches } from './token.ts';

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

export function routes(ctx: RouteContext): Hono {
  const app = new Hono();
  app.use('*', async (c, next) => {
    if (ctx.loopback && !LOOPBACK_HOST.test(c.req.header('host') ?? '')) return c.text('this endpoint answers to loopback host names only\n', 421);
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v);
  });
  app.get('/livez', (c) => c.text('ok\n'));
  app.get('/readyz', (c) => {
    const r = readiness(ctx.agent.telemetry, ctx.sink, ctx.settings);
    return c.json(r, r.ready ? 200 : 503);
  });
  app.get('/metrics', (c) => c.body(exposition(ctx.agent.telemetry.collect()), 200, { 'content-type': EXPOSITION_CONTENT_TYPE }));
  app.get('/api/status', (c) => c.json(statusSnapshot(ctx)));
  app.get('/api/history', (c) => c.json(ctx.history.series()));
  app.get('/', (c) => {
    const given = c.req.query('token');
    const token = given !== undefined && tokenMatches(ctx.token, given) ? given : undefined;
    return c.html(renderPage(statusSnapshot(ctx), { token, history: ctx.history.series(), pollMs: ctx.pollMs }));
  });
  app.get('/assets/uplot.js', (c) => c.body(uplotAsset('uplot.js'), 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/assets/uplot.css', (c) => c.body(uplotAsset('uplot.css'), 200, { 'content-type': 'text/css; charset=utf-8' }));
  app.get('/assets/page.js', (c) => c.body(PAGE_SCRIPT, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/assets/page.css', (c) => c.body(PAGE_CSS, 200, { 'content-type': 'text/css; charset=utf-8' }));
  app.post('/actions/:action', async (c) => {
    const action = c.req.param('action') as (typeof ACTIONS)[number];
    if (!ACTIONS.includes(action)) return c.json({ error: `unknown action ${action}` }, 404);
    const crossOrigin = crossOriginReason(c);
    if (crossOrigin) return c.json({ error: crossOrigin }, 403);
    if (Number(c.req.header('content-length') ?? 0) > MAX_ACTION_BODY || c.req.header('transfer-encoding') !== undefined) {
      return c.json({ error: `an action's body is at most ${MAX_ACTION_BODY} bytes, with a Content-Length` }, 413);
    }
    const form = (c.req.header('content-type') ?? '').includes('application/x-www-form-urlencoded') ? await c.req.parseBody() : {};
    const given = bearer(c) ?? (typeof form.token === 'string' ? form.token : undefined);
    if (!tokenMatches(ctx.token, given)) return c.json({ error: 'actions need the token (edge-agent status --token)' }, 401);
    try {
      if (action === 'flush') await ctx.agent.queue.flush();
      else ctx.pause(action === 'pause');
    } catch (err) {
      return c.json({ error: describeError(err) }, 500);
    }
    ctx.log.info({ action }, 'status page action');
    // A form (no script) goes back to the page; a client that asked for JSON gets the outcome.
    if (typeof form.token === 'string') return c.redirect(`/?token=${encodeURIComponent(form.token)}`, 303);
    return c.json({ ok: true, action });
  });
  app.get('/api/tap', (c) => {
    if (!tokenMatches(ctx.token, bearer(c))) return c.json({ error: 'the tap shows records: it needs the token (edge-agent status --token)' }, 401);
    const stream = c.req.query('stream');
    if (!stream) return c.json({ error: 'stream= is required' }, 400);
    const asked = Number(c.req.query('max_bytes') ?? ctx.tapMaxBytes);
    const maxBytes = Number.isFinite(asked) && asked > 0 ? Math.min(asked, ctx.tapMaxBytes) : ctx.tapMaxBytes;
    if (ctx.agent.telemetry.tap.listening >= MAX_TAPS) return c.json({ error: `${MAX_TAPS} taps are open already` }, 429);
    const body = tapStream({ tap: ctx.agent.telemetry.tap, stream, maxBytes, secrets: ctx.secrets() });
    return c.body(body, 200, { 'content-type': 'application/x-ndjson; charset=utf-8' });
  });
  app.notFound((c) => c.text('not found\n', 404));
  return app;
}

function bearer(c: Context): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
  return m?.[1];
}

/** Why a state-changing request is refused as cross-origin, or undefined when it may go on. */
function crossOriginReason(c: Context): string | undefined {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-origin request refused (Sec-Fetch-Site: ${site})`;
  const origin = c.req.header('origin');
  if (origin !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== c.req.header('host')) return `cross-origin request refused (Origin: ${origin})`;
  }
  return undefined;
}
