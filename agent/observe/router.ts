/**
 * The few routes of the endpoint on `node:http` itself: no framework and no web `Request`/`Response`
 * (an adapter for those cost the running agent 3 MiB, more than the endpoint may add in all). A route is a
 * method and an exact path, or a path prefix (`/actions/`); it returns an `Answer`, or writes a stream
 * itself (the tap). HEAD is answered by the GET route without its body (node:http drops a HEAD's body);
 * anything else is 404. Headers every answer carries (the security headers) are given once, to `serve`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A whole answer, or a stream the route writes itself (the response already has its status and headers). */
export type Answer =
  | { status: number; headers: Record<string, string>; body: string }
  | { stream: (res: ServerResponse) => void; headers: Record<string, string> };

export interface Request {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** The rest of the path after a prefix route's prefix (`pause` for `/actions/pause`). */
  readonly rest: string;
  header(name: string): string | undefined;
  readonly raw: IncomingMessage;
}

export type Handler = (req: Request) => Answer | Promise<Answer>;

export const text = (body: string, status = 200): Answer => ({ status, headers: { 'content-type': 'text/plain; charset=UTF-8' }, body });
export const json = (value: unknown, status = 200): Answer => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });
export const html = (body: string): Answer => ({ status: 200, headers: { 'content-type': 'text/html; charset=UTF-8' }, body });
export const typed = (body: string, contentType: string): Answer => ({ status: 200, headers: { 'content-type': contentType }, body });
export const redirect = (location: string): Answer => ({ status: 303, headers: { location }, body: '' });

export class Router {
  private readonly exact = new Map<string, Handler>();
  private readonly prefixes: { method: string; prefix: string; handler: Handler }[] = [];

  get(path: string, handler: Handler): this {
    this.exact.set(`GET ${path}`, handler);
    return this;
  }

  /** POST to any path under `prefix` (which ends with `/`); the handler reads the rest from `req.rest`. */
  postUnder(prefix: string, handler: Handler): this {
    this.prefixes.push({ method: 'POST', prefix, handler });
    return this;
  }

  /** The handler for a request, with the rest of its path, or undefined (404). */
  match(method: string, path: string): { handler: Handler; rest: string } | undefined {
    const asked = method === 'HEAD' ? 'GET' : method;
    const exact = this.exact.get(`${asked} ${path}`);
    if (exact) return { handler: exact, rest: '' };
    for (const p of this.prefixes) {
      if (p.method === asked && path.startsWith(p.prefix) && path.length > p.prefix.length) return { handler: p.handler, rest: path.slice(p.prefix.length) };
    }
    return undefined;
  }
}

/**
 * A `node:http` request listener for `router`. `before` may answer first (the Host check); `onError` turns
 * a route that threw into an answer. `always` is added to every answer's headers.
 */
export function serve(
  router: Router,
  options: { always: Record<string, string>; before?: (req: Request) => Answer | undefined; onError: (err: unknown) => Answer },
): (req: IncomingMessage, res: ServerResponse) => void {
  return (raw, res) => {
    const url = raw.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = raw.method ?? 'GET';
    const found = router.match(method, path);
    const req: Request = {
      method,
      path,
      query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)),
      rest: found?.rest ?? '',
      header: (name) => {
        const v = raw.headers[name];
        return Array.isArray(v) ? v.join(', ') : v;
      },
      raw,
    };
    const answer = (): Answer | Promise<Answer> => options.before?.(req) ?? (found ? found.handler(req) : text('not found\n', 404));
    let pending: Answer | Promise<Answer>;
    try {
      pending = answer();
    } catch (err) {
      pending = options.onError(err);
    }
    Promise.resolve(pending)
      .catch((err: unknown) => options.onError(err))
      .then((a) => send(res, a, method, options.always));
  };
}

function send(res: ServerResponse, a: Answer, method: string, always: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  if ('stream' in a) {
    res.writeHead(200, { ...a.headers, ...always });
    if (method === 'HEAD') res.end();
    else a.stream(res);
    return;
  }
  res.writeHead(a.status, { ...a.headers, ...always, 'content-length': Buffer.byteLength(a.body) });
  res.end(a.body);
}
