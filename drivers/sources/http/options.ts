import { z, duration, envOption, fileOption, size } from '../../../agent/sdk/index.ts';

/** A stream name, as the config's `stream:` takes it. */
const STREAM = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Built on first use (agent/sdk/define.ts). */
export function options() {
  return z
    .strictObject({
      host: z
        .string()
        .min(1)
        .default('127.0.0.1')
        .describe(
          'Address to listen on. Loopback by default: only programs on the gateway can post. `0.0.0.0` opens it to the site network (use TLS and tokens).',
        ),
      port: z.number().int().min(0).max(65_535).describe('TCP port to listen on (0: any free port, logged at start; for tests).'),
      path: z
        .string()
        .regex(/^\/[A-Za-z0-9._~/-]*[^/]$/, 'a path such as /ingest, without a trailing slash')
        .default('/ingest')
        .describe('Route prefix: records for stream S are posted to `<path>/S`.'),
      streams: z
        .array(z.string().regex(STREAM, "stream names are 1–64 letters, digits, '.', '_' or '-'"))
        .min(1)
        .optional()
        .describe("Streams that may be posted to, each at its own route; any other route is 404. Default: the source's own stream only."),
      auth: z
        .enum(['token', 'none'])
        .default('token')
        .describe('token: every request carries `Authorization: Bearer <token>`; none: no authentication (loopback only).'),
      token_file: fileOption(
        z.string().optional().describe('File holding the accepted tokens, one per line (two during a rotation). Read at start; never logged.'),
        { what: 'ingest tokens', secret: true },
      ),
      token_env: envOption(z.string().optional().describe('Environment variable holding the accepted token.'), { what: 'ingest token' }),
      max_body_bytes: size()
        .prefault('1MiB')
        .refine((n) => n >= 64 && n <= 64 * 1024 * 1024, 'between 64 bytes and 64MiB')
        .describe('Largest request body; a larger one is refused with 413 while it is read (the declared Content-Length first), never buffered whole.'),
      max_records: z.number().int().min(1).max(100_000).default(10_000).describe('Records one request may carry; more is 413.'),
      max_pending_bytes: size()
        .prefault('8MiB')
        .refine((n) => n >= 1, 'at least 1 byte')
        .describe('Bytes of request bodies received and not yet committed, over all requests; beyond it new requests get 503 with Retry-After.'),
      max_connections: z.number().int().min(1).max(10_000).default(64).describe('Open connections at most; the server refuses more.'),
      request_timeout: duration(100).prefault('30s').describe('Time a client has to send a whole request (headers and body); a slower one is cut off.'),
      commit_within: duration()
        .prefault('20ms')
        .describe(
          'A client waits for its 202 before it posts more, so a request is committed within this time rather than after queue.commit_interval; requests of several clients within it share one commit.',
        ),
      retry_after: duration(1000).prefault('1s').describe('Retry-After sent with 503.'),
      tls: z
        .strictObject({
          cert: fileOption(z.string().describe('PEM certificate file of the endpoint (with its chain).'), { what: 'TLS certificate' }),
          key: fileOption(z.string().describe('PEM private key file of the certificate.'), { what: 'TLS private key', secret: true }),
          ca: fileOption(z.string().optional().describe('PEM CA file: when given, clients must present a certificate it signed.'), { what: 'TLS CA' }),
        })
        .optional()
        .describe('Serve HTTPS instead of HTTP.'),
    })
    .superRefine((o, ctx) => {
      if (o.auth === 'token' && o.token_file === undefined && o.token_env === undefined) {
        ctx.addIssue({ code: 'custom', path: ['token_file'], message: 'auth: token needs token_file or token_env (or auth: none)' });
      }
    });
}

export type HttpOptions = z.output<ReturnType<typeof options>>;
