/**
 * The `http` section: metrics, health and the status page on one HTTP listener (docs/observability.md). Its
 * own file because schema.ts is the whole file's shape, and this section is a feature of its own.
 *
 * Off by default: a gateway that nobody scrapes pays nothing for it (the server's code is not even loaded),
 * and a fixed default port would collide between several agents on one host. Loopback by default when on: a
 * status page on every interface of a gateway is a decision the operator writes down, not one we make.
 */
import { z } from '../util/zod.ts';
import { duration, size } from '../util/units.ts';

const LISTEN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export const httpSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Serve /metrics, /livez, /readyz and the status page (docs/observability.md).'),
    listen: z
      .string()
      .regex(LISTEN, 'listen is host:port, e.g. 127.0.0.1:9464 or [::1]:9464 (port 0 picks a free one)')
      .refine((s) => Number(LISTEN.exec(s)?.[2]) <= 65535, 'the port is at most 65535')
      .default('127.0.0.1:9464')
      .describe(
        'Address and port to listen on; loopback by default. 0.0.0.0 exposes the page (read-only without the token) to the network. The address taken is written to <data_dir>/http.url.',
      ),
    ready_sink_grace: duration()
      .prefault('30s')
      .describe('/readyz stays green this long after the sink disconnected (a reconnect within it is not an outage).'),
    ready_max_oldest_age: duration()
      .prefault('5m')
      .describe('/readyz turns red when the oldest undelivered record is older than this, unless forwarding is held on purpose.'),
    history_interval: duration(1000).prefault('10s').describe("The status page's plots: one point per interval, the last hour kept in memory (a fixed ring)."),
    tap_max_bytes: size()
      .prefault('1MiB')
      .describe(
        '`edge-agent tap`: bytes one tap may receive at most before the agent ends it; records that arrive while the client is slow are skipped and counted.',
      ),
  })
  .prefault({})
  .describe('Metrics, health and the status page over HTTP.');

export type HttpConfig = z.output<typeof httpSchema>;
