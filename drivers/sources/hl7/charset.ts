import { TextDecoder } from 'node:util';
/**
 * HL7 v2 character sets (MSH-18, HL7 table 0211) and the WHATWG decoder labels that read them. Every one
 * accepted here is ASCII-compatible, so the MSH segment (ASCII by rule) can be read before the message is
 * decoded. UTF-16 and UTF-32 are not: MLLP frames them badly and nothing on a site sends them; refused (AR).
 */
const CHARSETS = {
  ASCII: 'utf-8',
  'UNICODE UTF-8': 'utf-8',
  UNICODE: 'utf-8',
  '8859/1': 'iso-8859-1',
  '8859/2': 'iso-8859-2',
  '8859/3': 'iso-8859-3',
  '8859/4': 'iso-8859-4',
  '8859/5': 'iso-8859-5',
  '8859/6': 'iso-8859-6',
  '8859/7': 'iso-8859-7',
  '8859/8': 'iso-8859-8',
  '8859/9': 'iso-8859-9',
  '8859/15': 'iso-8859-15',
  'ISO IR6': 'utf-8',
  'ISO IR100': 'iso-8859-1',
  'ISO IR101': 'iso-8859-2',
  'ISO IR109': 'iso-8859-3',
  'ISO IR110': 'iso-8859-4',
  'ISO IR144': 'iso-8859-5',
  'ISO IR127': 'iso-8859-6',
  'ISO IR126': 'iso-8859-7',
  'ISO IR138': 'iso-8859-8',
  'ISO IR148': 'iso-8859-9',
  'GB 18030-2000': 'gb18030',
  'KS X 1001': 'euc-kr',
  'BIG-5': 'big5',
  'CNS 11643-1992': 'big5',
  'ISO IR87': 'iso-2022-jp',
} as const satisfies Record<string, string>;

export type CharsetName = keyof typeof CHARSETS;
export const CHARSET_NAMES = Object.keys(CHARSETS) as [CharsetName, ...CharsetName[]];

const decoders = new Map<string, TextDecoder>();

/** A strict decoder for an MSH-18 value (first repetition), or undefined when the value is not one we read. */
export function decoderFor(name: string): TextDecoder | undefined {
  const label = (CHARSETS as Record<string, string>)[name.trim().toUpperCase()];
  if (!label) return undefined;
  let decoder = decoders.get(label);
  if (!decoder) {
    decoder = new TextDecoder(label, { fatal: true });
    decoders.set(label, decoder);
  }
  return decoder;
}
