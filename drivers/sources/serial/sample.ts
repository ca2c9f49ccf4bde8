/** Bad bytes made readable for a log line; the rate limit on those lines is the SDK's problem reporter. */
/** The start of some bad bytes, readable in a log line: text when printable, hex otherwise. */
export function sample(bytes: Buffer, max = 48): { sample: string } | { sample_hex: string } {
  const head = bytes.subarray(0, max);
  const printable = head.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d);
  const more = bytes.length > max ? '…' : '';
  return printable ? { sample: head.toString('latin1') + more } : { sample_hex: head.toString('hex') + more };
}
