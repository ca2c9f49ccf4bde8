/**
 * Acknowledgements (original mode): AA once the message is committed, AE for a message the gateway could
 * read but not take (a content error), AR for one it cannot take at all (not HL7, a character set it does
 * not read, too large). Built from the received MSH as read byte for byte (latin-1), so the names echoed
 * back keep the sender's own bytes whatever its character set.
 */
import type { Delimiters } from './parse.ts';

export type AckCode = 'AA' | 'AE' | 'AR';

const DEFAULT_DELIMITERS: Delimiters = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };

let counter = 0;

function hl7Time(now: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}+0000`;
}

/** Text for MSA-3/ERR: no delimiter of the message may appear in it. */
function clean(text: string, d: Delimiters): string {
  let out = '';
  for (const ch of text.slice(0, 200))
    out += ch === d.field || ch === d.component || ch === d.repetition || ch === d.escape || ch === d.subcomponent || ch < ' ' ? ' ' : ch;
  return out;
}

/**
 * The ACK for a message whose MSH fields (`mshFields[n]` = MSH-n, latin-1) were read, or for one whose MSH
 * could not be read at all (`mshFields` undefined: an AR with the default delimiters).
 */
export function buildAck(code: AckCode, mshFields: readonly string[] | undefined, delimiters: Delimiters | undefined, text?: string): Buffer {
  const d = delimiters ?? DEFAULT_DELIMITERS;
  const f = (n: number) => mshFields?.[n] ?? '';
  const trigger = f(9).split(d.component)[1] ?? '';
  const controlId = f(10).split(d.component)[0] ?? '';
  const msh = [
    'MSH',
    `${d.component}${d.repetition}${d.escape}${d.subcomponent}`,
    f(5),
    f(6),
    f(3),
    f(4),
    hl7Time(new Date()),
    '',
    `ACK${d.component}${trigger}${d.component}ACK`,
    `EA${Date.now().toString(36)}${(counter++ % 1296).toString(36).padStart(2, '0')}`,
    f(11) || 'P',
    f(12) || '2.5',
  ];
  if (f(18)) msh.push('', '', '', '', '', f(18));
  const segments = [msh.join(d.field)];
  const msa = ['MSA', code, controlId];
  if (code !== 'AA' && text) msa.push(clean(text, d));
  segments.push(msa.join(d.field));
  // ERR-3 (v2.5): HL7 table 0357, 207 = application internal error (the text says which).
  if (code !== 'AA' && text) segments.push(['ERR', '', '', `207${d.component}${clean(text, d)}${d.component}HL70357`, 'E'].join(d.field));
  return Buffer.from(`${segments.join('\r')}\r`, 'latin1');
}
