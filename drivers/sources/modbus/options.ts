import { z, duration } from '../../../agent/sdk/index.ts';
import { checkSerialDevice, serialLineShape } from '../../common/serial-line.ts';
import { TYPE_WORDS, VALUE_TYPES } from './decode.ts';

/** Registers in one read request at most (the protocol's limits: 125 registers, 2000 bits). */
export const MAX_READ = { register: 125, bit: 2000 } as const;

const point = () =>
  z
    .strictObject({
      name: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a field name: letters, digits and _, not starting with a digit')
        .describe('The record field the value goes into.'),
      table: z
        .enum(['coil', 'discrete_input', 'holding', 'input'])
        .default('holding')
        .describe('Which Modbus table: coils (function 1), discrete inputs (2), holding registers (3), input registers (4).'),
      address: z
        .number()
        .int()
        .min(0)
        .max(65_535)
        .describe("Zero-based address of the first register or bit (protocol address; a manual's 40001 is holding address 0)."),
      type: z
        .enum(VALUE_TYPES)
        .optional()
        .describe(
          'How the registers read: int16, uint16, int32, uint32, float32, int64, uint64, float64; bits are bool. Default uint16 for registers, bool for bits.',
        ),
      count: z.number().int().min(1).max(125).default(1).describe('Values of this type in a row; more than one makes the field a list.'),
      word_order: z
        .enum(['big', 'little'])
        .default('big')
        .describe('For 32- and 64-bit types: big = the register with the most significant word comes first (ABCD), little = last (CDAB).'),
      byte_order: z
        .enum(['big', 'little'])
        .default('big')
        .describe('Bytes within each register: big as the protocol says; little for devices that swap them (BADC).'),
      scale: z.number().default(1).describe('The value read is multiplied by this…'),
      offset: z.number().default(0).describe('…and this is added (value · scale + offset).'),
      unit: z.string().min(1).optional().describe('Unit of the value (goes into the record field `units`).'),
      unit_id: z.number().int().min(0).max(255).optional().describe("Modbus unit (slave) id of this value when it differs from the source's."),
    })
    .superRefine((p, ctx) => {
      const bits = p.table === 'coil' || p.table === 'discrete_input';
      const type = p.type ?? (bits ? 'bool' : 'uint16');
      if (bits !== (type === 'bool'))
        ctx.addIssue({
          code: 'custom',
          path: ['type'],
          message: bits ? `${p.table} values are bits: type bool` : `bool is for coils and discrete inputs, not ${p.table} registers`,
        });
      const span = bits ? p.count : p.count * (TYPE_WORDS[type] ?? 1);
      if (span > (bits ? MAX_READ.bit : MAX_READ.register))
        ctx.addIssue({
          code: 'custom',
          path: ['count'],
          message: `spans ${span} ${bits ? 'bits' : 'registers'}, over one read (${bits ? MAX_READ.bit : MAX_READ.register})`,
        });
      if (p.address + span > 65_536) ctx.addIssue({ code: 'custom', path: ['count'], message: 'runs past address 65535' });
    });

/** Built on first use (agent/sdk/define.ts). */
export const modbusSourceOptions = () =>
  z
    .strictObject({
      transport: z
        .discriminatedUnion('type', [
          z.strictObject({
            type: z.literal('tcp').describe('Modbus TCP.'),
            host: z.string().min(1).describe('The device or gateway, e.g. 192.168.10.20.'),
            port: z.number().int().min(1).max(65_535).default(502).describe('TCP port.'),
          }),
          z.strictObject({
            type: z.literal('rtu').describe('Modbus RTU on a serial line (RS-485/RS-232), opened as the serial source opens its ports.'),
            ...serialLineShape(),
          }),
        ])
        .describe('How the device is reached: `type: tcp` with host and port, or `type: rtu` with the serial line settings.'),
      unit_id: z.number().int().min(0).max(255).default(1).describe('Modbus unit (slave) id; 255 or 0 is common for TCP devices that ignore it.'),
      timeout: duration(1)
        .prefault('1s')
        .describe('How long one read waits for its answer; a read that times out is counted (`timeouts`) and its values are missing from that poll.'),
      max_gap: z
        .number()
        .int()
        .min(0)
        .max(100)
        .default(8)
        .describe('Values of one table and unit closer than this many registers (or bits) are fetched by one read, the gap read and ignored.'),
      points: z.array(point()).min(1).describe('The register map: what to read and how each value is decoded into the record.'),
    })
    .superRefine((o, ctx) => {
      if (o.transport.type === 'rtu') checkSerialDevice(o.transport, ctx, ['transport']);
      const names = new Set<string>();
      o.points.forEach((p, i) => {
        if (names.has(p.name) || p.name === 'unit_id' || p.name === 'units' || p.name === 'errors')
          ctx.addIssue({ code: 'custom', path: ['points', i, 'name'], message: `field name ${p.name} is used twice or reserved` });
        names.add(p.name);
      });
    });

export type ModbusOptions = z.output<ReturnType<typeof modbusSourceOptions>>;
export type Point = ModbusOptions['points'][number];
