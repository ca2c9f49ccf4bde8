import { z, duration, size, urlOption } from '../../../agent/sdk/index.ts';
import { reconnectOptions } from '../../common/reconnect.ts';
import { tokenOptions } from '../../common/secrets.ts';
import { tlsOptions } from '../../common/tls.ts';

/** Built on first use (agent/sdk/define.ts). */
export const pulsarOptions = () =>
  z
    .strictObject({
      transport: z
        .enum(['websocket', 'native'])
        .default('websocket')
        .describe(
          "`websocket`: pure JS over the broker's WebSocket API (works everywhere, including the single binary). `native`: the optional `pulsar-client` npm package (needs its native library).",
        ),
      // The native client takes a comma-separated host list (failover); the websocket transport one host.
      url: urlOption({ schemes: ['ws', 'wss', 'pulsar', 'pulsar+ssl'], hostList: true }).describe(
        "websocket: the broker's web service, ws://host:8080 or wss://host:8443. native: its binary protocol, pulsar://host:6650 or pulsar+ssl://host:6651.",
      ),
      tenant: z
        .string()
        .regex(/^[\w.-]+$/)
        .default('public')
        .describe('Pulsar tenant of the topics.'),
      namespace: z
        .string()
        .regex(/^[\w.-]+$/)
        .default('default')
        .describe('Pulsar namespace (inside the tenant) of the topics.'),
      topic: z
        .string()
        .regex(/^([\w.-]|\{device\}|\{stream\})+$/, 'letters, digits, `.`, `_`, `-`, and the placeholders {device} and {stream}')
        .default('edge-agent-{device}')
        .describe(
          'Topic name template; `{device}` and `{stream}` are replaced. Full topic: persistent://<tenant>/<namespace>/<topic>. The receiver subscribes to every topic the template can produce (a regex subscription).',
        ),
      ...tokenOptions(),
      tls: tlsOptions('wss:// and pulsar+ssl://', {
        peer: 'broker',
        servername: false,
        cert: 'PEM client certificate file (websocket transport), for client-certificate TLS.',
        key: 'PEM private key of the client certificate.',
      }),
      connect_timeout: duration().default(10_000).describe('How long opening a producer or consumer may take.'),
      send_timeout: duration().default(30_000).describe('How long the broker-side client keeps trying to store a message before reporting a send error.'),
      max_pending: z
        .number()
        .int()
        .min(1)
        .max(10_000)
        .default(1000)
        .describe("Most messages awaiting their receipt per producer (the runtime's sender.max_in_flight bounds it too)."),
      max_frame_size: size()
        .default(1_048_576)
        .describe(
          "websocket: the broker's webSocketMaxTextFrameSize. A batch whose frame (base64 payload in JSON) exceeds it is refused at once instead of breaking the connection.",
        ),
      reconnect: reconnectOptions(),
      subscription: z
        .string()
        .regex(/^[\w.-]+$/)
        .default('edge-receiver')
        .describe("Consumer only: durable subscription name. It keeps the receiver's position while it is away."),
      consumer_name: z
        .string()
        .regex(/^[\w.-]+$/)
        .optional()
        .describe(
          "Consumer only: this receiver's name in the subscription (default `edge-receiver`). Give each receiver sharing a Key_Shared subscription its own: the broker spreads keys by consumer name.",
        ),
      subscription_type: z
        .enum(['Exclusive', 'Failover', 'Shared', 'Key_Shared'])
        .default('Exclusive')
        .describe('Consumer only: Exclusive (one receiver), Failover (a standby receiver takes over), Shared/Key_Shared (several receivers share the load).'),
    })
    .superRefine((o, ctx) => {
      // Each transport speaks its own protocol: a pulsar:// URL given to the websocket transport would only
      // fail when it connects, far from the line that caused it.
      if (typeof o.url !== 'string') return; // reported by the url field itself
      const scheme = o.url.slice(0, o.url.indexOf('://'));
      const websocket = scheme === 'ws' || scheme === 'wss';
      if (!websocket && scheme !== 'pulsar' && scheme !== 'pulsar+ssl') return; // refused by the url field itself
      if (o.transport === 'websocket' && !websocket)
        ctx.addIssue({
          code: 'custom',
          path: ['url'],
          message: `transport websocket needs a ws:// or wss:// URL (the broker's web service), got ${scheme}://`,
        });
      else if (
        o.transport === 'websocket' &&
        o.url
          .slice(scheme.length + 3)
          .split(/[/?#]/, 1)[0]!
          .includes(',')
      )
        ctx.addIssue({ code: 'custom', path: ['url'], message: 'transport websocket takes one host; only the native transport takes a list' });
      else if (o.transport === 'native' && websocket)
        ctx.addIssue({
          code: 'custom',
          path: ['url'],
          message: `transport native needs a pulsar:// or pulsar+ssl:// URL (the binary protocol), got ${scheme}://`,
        });
    });

export type PulsarOptions = z.output<ReturnType<typeof pulsarOptions>>;
