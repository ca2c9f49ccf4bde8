import { z, duration, size } from '../../../agent/sdk/index.ts';
import { CHARSET_NAMES } from './charset.ts';

/** `host:port`, `[v6]:port` or a bare port (then the host is 127.0.0.1). */
export function parseListen(listen: string): { host: string; port: number } | undefined {
  const bare = /^(\d{1,5})$/.exec(listen);
  const hostPort = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen);
  const port = Number(bare?.[1] ?? hostPort?.[3]);
  if (!(port >= 0 && port <= 65_535) || (!bare && !hostPort)) return undefined;
  return { host: bare ? '127.0.0.1' : (hostPort![1] ?? hostPort![2]!), port };
}

/** Built on first use (agent/sdk/define.ts). */
export const hl7SourceOptions = () =>
  z.strictObject({
    listen: z
      .string()
      .default('127.0.0.1:2575')
      .refine((v) => parseListen(v) !== undefined, 'must be host:port, [v6 address]:port or a port, e.g. 127.0.0.1:2575')
      .describe(
        'Where the MLLP listener binds. Loopback by default: the hospital systems that send to the gateway are usually on its site network, so give the address of that interface (or 0.0.0.0) on purpose.',
      ),
    max_message_bytes: size().prefault('1MiB').describe('Largest message accepted; a larger one is read to its end, not kept, and answered AR.'),
    max_connections: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(32)
      .describe('Senders connected at once; a further connection is closed as it arrives, and counted.'),
    default_charset: z
      .enum(CHARSET_NAMES)
      .default('UNICODE UTF-8')
      .describe(
        'Character set of a message whose MSH-18 is empty (HL7 itself says ASCII, which UTF-8 contains; set 8859/1 for senders that send Latin-1 without saying so).',
      ),
    dedup_window: z
      .number()
      .int()
      .min(0)
      .max(100_000)
      .default(128)
      .describe(
        'Messages (by sending application, facility and MSH-10 control id) remembered with the committed records: one sent again because its ACK was lost is answered AA and not queued twice. A sender resends only what it has no ACK for, at most one message per connection under MLLP, so a window above max_connections is enough; 8 bytes each, written with every commit. 0 turns it off (the record still carries `control_id` for the centre).',
      ),
    commit_within: duration()
      .prefault('20ms')
      .describe(
        'A sender waits for each ACK before it sends the next message, so a message is committed within this time rather than after queue.commit_interval; messages of several senders within it share one commit.',
      ),
    idle_timeout: duration().prefault('10m').describe('A connection that sends nothing for this long is closed (the sender reconnects when it has more).'),
    keep_raw: z.boolean().default(true).describe('Keep the whole message (as decoded text, segments separated by \\r) in the record field `raw`.'),
  });
