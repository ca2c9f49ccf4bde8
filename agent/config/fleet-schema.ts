/**
 * The `fleet` section: remote control over MQTT (docs/remote.md). Its own file because schema.ts is the whole
 * file's shape, and this section is a feature of its own.
 */
import { z } from '../util/zod.ts';
import { envOption } from '../util/env-option.ts';
import { fleetUpdateSchema } from './fleet-update-schema.ts';
import { fileOption } from '../util/file-option.ts';
import { tlsOptions } from '../util/tls.ts';
import { duration, size } from '../util/units.ts';

export const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const name = (what: string) => z.string().regex(NAME, `${what} must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`);

/**
 * `fleet.broker`: the control connection's broker. Its files (password, TLS) and variable are marked with
 * fileOption / envOption, so the start-up checks find them as they find the drivers' (agent/checks/files.ts).
 */
export const fleetBrokerSchema = z
  .strictObject({
    url: z
      .string()
      .default('embedded')
      .describe("The control connection's broker: `mqtt://host:port`, `mqtts://…`, or `embedded` for this agent's own broker."),
    protocol_version: z
      .union([z.literal(4), z.literal(5)])
      .default(5)
      .describe('MQTT 5, or 4 for an MQTT 3.1.1 broker (commands then answer on a fixed topic).'),
    username: z.string().min(1).optional(),
    password_file: fileOption(z.string().optional().describe('File holding the password (its first line; relative to the config file).'), {
      what: 'fleet broker password',
      secret: true,
    }),
    password_env: envOption(z.string().optional().describe('Environment variable holding the password.'), { what: 'fleet broker password' }),
    tls: tlsOptions('mqtts://', {
      peer: 'broker',
      describe: 'TLS of the control connection, used with mqtts:// URLs: without it, the system CAs verify the broker. Paths are relative to the config file.',
    }),
  })
  .prefault({})
  .describe("The MQTT connection for remote control, separate from the sink's (client id `<device>-control`).");

export const fleetSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Take status, commands and signed configuration over MQTT (docs/remote.md).'),
    broker: fleetBrokerSchema,
    topic_prefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'topic_prefix must be topic levels of letters, digits, ., _ or -, joined by /')
      .default('edge-agent')
      .describe('First levels of every fleet topic: `<prefix>/<device>/status`, `<prefix>/<device>/cmd`, …'),
    groups: z
      .array(name('group name'))
      .default([])
      .describe("Groups whose signed configuration this device also follows, lowest precedence first; the device's own document comes last."),
    trust: z
      .strictObject({
        root_keys: z.array(z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a root key is the base64url of a 32-byte Ed25519 public key')).default([]),
        threshold: z.number().int().min(1).default(1).describe('Root signatures needed on an operator certificate, a revocation list or a new root.'),
      })
      .prefault({})
      .describe('The root public keys every remote change must chain to (`edge-agent fleet root init` makes them).'),
    allow_unsigned_reads: z.boolean().default(true).describe('Answer read-only commands (ping, status, queue.stats, config.get) without a signature.'),
    health_deadline: duration()
      .prefault('60s')
      .describe('After applying a new configuration: time for sources to run, the sink to connect and one batch to be acknowledged, or it is rolled back.'),
    max_message_bytes: size().prefault('256KiB').describe('Largest command or configuration message taken; checked before parsing.'),
    watch_local_file: z
      .boolean()
      .default(false)
      .describe('Reload the config file when it changes (as on SIGHUP: validated, applied, health-checked, committed or rolled back). Read at start.'),
    update: fleetUpdateSchema,
  })
  .superRefine((f, ctx) => {
    if (f.enabled && f.trust.root_keys.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['trust', 'root_keys'], message: 'fleet.enabled needs at least one root key' });
    }
    if (f.trust.root_keys.length > 0 && f.trust.threshold > f.trust.root_keys.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['trust', 'threshold'],
        message: `threshold ${f.trust.threshold} is more than the ${f.trust.root_keys.length} root keys`,
      });
    }
    if (f.broker.username !== undefined && f.broker.password_file === undefined && f.broker.password_env === undefined) {
      ctx.addIssue({ code: 'custom', path: ['broker', 'username'], message: 'fleet.broker.username needs password_file or password_env' });
    }
  })
  .prefault({});
