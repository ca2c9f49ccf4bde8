import { z, duration, size } from '../../../agent/sdk/index.ts';
import { checkSerialDevice, serialLineShape } from '../../common/serial-line.ts';

const HEX = /^(?:[0-9a-fA-F]{2})+$/;

function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

/** Built on first use (agent/sdk/define.ts). */
export function options() {
  const delimiter = z.string().min(1).default('\n').describe('Bytes that end a frame (UTF-8); a "\\r" before a "\\n" delimiter is stripped.');
  const binaryEncoding = z.enum(['hex', 'bytes']).default('hex').describe("How the frame goes into the record's `data` field: a hex string or a byte string.");
  const sync = z
    .string()
    .regex(HEX, 'sync must be hex bytes such as "aa55"')
    .optional()
    .describe(
      'Hex bytes every frame starts with (included in the frame); bytes before a sync are discarded and counted. Without it, frames are cut by position only.',
    );

  const framing = z
    .discriminatedUnion('mode', [
      z.strictObject({
        mode: z.literal('lines').describe('One record `{ line }` per delimited line of text.'),
        delimiter,
      }),
      z.strictObject({
        mode: z.literal('regex').describe("Each delimited line is matched against `pattern`; its named groups become the record's fields."),
        delimiter,
        pattern: z
          .string()
          .refine(compiles, 'pattern must be a valid regular expression')
          .refine((p) => compiles(p) && /\(\?<[A-Za-z_$][\w$]*>/.test(p), 'pattern needs at least one named group such as (?<temp>[0-9.]+)')
          .describe('Regular expression (JavaScript syntax) with named groups; a line that does not match is counted as `no_match`.'),
        numbers: z.boolean().default(true).describe('Turn group values that are decimal numbers into numbers.'),
      }),
      z.strictObject({
        mode: z.literal('json_lines').describe("Each delimited line is a JSON object whose keys become the record's fields."),
        delimiter,
      }),
      z.strictObject({
        mode: z.literal('fixed').describe('Frames of a fixed number of bytes, as `{ data }`.'),
        length: z.number().int().min(1).describe('Bytes per frame, sync included (at most max_frame_bytes).'),
        sync,
        encoding: binaryEncoding,
      }),
      z.strictObject({
        mode: z.literal('length_prefixed').describe('Binary frames: [sync] length prefix, then that many payload bytes, as `{ data }` (the payload).'),
        prefix_bytes: z
          .union([z.literal(1), z.literal(2), z.literal(4)])
          .default(2)
          .describe('Size of the length prefix in bytes: 1, 2 or 4.'),
        endian: z.enum(['big', 'little']).default('big').describe('Byte order of the length prefix.'),
        length_includes_prefix: z.boolean().default(false).describe('The length counts the prefix (and sync) bytes too, not only the payload.'),
        max_length: z
          .number()
          .int()
          .min(0)
          .optional()
          .describe('Largest payload accepted; a larger length is counted as `overlong` and the framer resynchronises. Default: max_frame_bytes.'),
        sync,
        encoding: binaryEncoding,
      }),
      z.strictObject({
        mode: z.literal('nmea').describe('NMEA 0183 sentences (`$…*hh` or `!…*hh`), checksum verified, parsed into fields.'),
        require_checksum: z.boolean().default(true).describe('Reject sentences without a `*hh` checksum (counted as `bad_checksum`).'),
      }),
    ])
    .prefault({ mode: 'lines' })
    .describe('How the byte stream is cut into records: `mode` is lines, regex, json_lines, fixed, length_prefixed or nmea.');

  return z
    .strictObject({
      ...serialLineShape(),
      framing,
      max_frame_bytes: z
        .number()
        .int()
        .min(8)
        .max(1 << 20)
        .default(4096)
        .describe('Longest frame accepted; longer ones are discarded up to the next delimiter and counted as `overlong`.'),
      batch_records: z.number().int().min(1).max(10_000).default(100).describe('Records per emit at most.'),
      flush_interval: duration(1).prefault('50ms').describe('Longest a framed record waits before its group is handed to the queue.'),
      max_pending: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .default(8)
        .describe('Emits awaiting their commit at once; beyond that the port is paused (with flow control the device then waits).'),
      max_pending_bytes: size()
        .prefault('1MiB')
        .refine((n) => n >= 1, 'at least 1 byte')
        .describe(
          "Bytes of records gathered and awaiting their commit (twice each frame's length plus 128 per record); beyond that the port is paused as for max_pending. A group is also handed over once it holds max_pending_bytes / max_pending.",
        ),
      reopen_initial_delay: duration(1)
        .prefault('200ms')
        .describe('First delay before reopening a port that vanished (doubles per failed attempt, with jitter).'),
      reopen_max_delay: duration(1).prefault('10s').describe('Longest delay between reopen attempts.'),
    })
    .superRefine((o, ctx) => checkSerialDevice(o, ctx));
}

export type SerialOptions = z.output<ReturnType<typeof options>>;
export type Framing = SerialOptions['framing'];
