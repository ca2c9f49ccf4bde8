/**
 * The settings of a serial line, shared by every driver that opens one (the serial source, the modbus
 * source's RTU transport): which device (a path, or a USB adapter by its ids) and how the line runs.
 */
import { z } from '../../agent/sdk/index.ts';

const USB_ID = /^[0-9a-fA-F]{4}$/;

/** The shape to spread into a driver's options (a shape, so each driver keeps its own strict object). */
export const serialLineShape = () => ({
  path: z.string().min(1).optional().describe('Device path, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…; give either path or vendor_id + product_id.'),
  vendor_id: z
    .string()
    .regex(USB_ID, 'vendor_id must be 4 hex digits such as "0403"')
    .optional()
    .describe('USB vendor id (4 hex digits): the port is looked up among the serial ports on every (re)open.'),
  product_id: z.string().regex(USB_ID, 'product_id must be 4 hex digits such as "6001"').optional().describe('USB product id (4 hex digits), with vendor_id.'),
  serial_number: z.string().min(1).optional().describe('USB serial number, to tell apart several adapters with the same vendor and product ids.'),
  baud_rate: z.number().int().min(50).max(4_000_000).default(9600).describe('Line speed in baud.'),
  data_bits: z
    .union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)])
    .default(8)
    .describe('Data bits per character.'),
  parity: z.enum(['none', 'even', 'odd']).default('none').describe('Parity bit (mark and space parity are not available on Linux).'),
  stop_bits: z
    .union([z.literal(1), z.literal(1.5), z.literal(2)])
    .default(1)
    .describe('Stop bits.'),
  flow_control: z.enum(['none', 'rtscts', 'xon_xoff']).default('none').describe('Flow control: none, hardware (RTS/CTS) or software (XON/XOFF).'),
});

export type SerialLineOptions = z.output<z.ZodObject<ReturnType<typeof serialLineShape>>>;

/** Path or USB ids, exactly one of them: checked in the schema so check-config reports it with the other errors. */
export function checkSerialDevice(
  o: Pick<SerialLineOptions, 'path' | 'vendor_id' | 'product_id' | 'serial_number'>,
  ctx: z.RefinementCtx,
  at: (string | number)[] = [],
): void {
  const byIds = o.vendor_id !== undefined || o.product_id !== undefined || o.serial_number !== undefined;
  if (o.path !== undefined && byIds) ctx.addIssue({ code: 'custom', path: [...at, 'path'], message: 'give either path or vendor_id/product_id, not both' });
  else if (o.path === undefined && (o.vendor_id === undefined || o.product_id === undefined)) {
    ctx.addIssue({ code: 'custom', path: [...at, o.vendor_id === undefined ? 'vendor_id' : 'product_id'], message: 'needs path, or vendor_id and product_id' });
  }
}
