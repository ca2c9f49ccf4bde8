import { z } from './zod.ts';

export interface UrlOptionSpec {
  /** The schemes the driver's client speaks, without `://`: `['mqtt', 'mqtts']`. */
  readonly schemes: readonly string[];
  /** Words accepted in place of a URL (`embedded`: the agent's in-process broker). */
  readonly words?: readonly string[];
  /** The authority may list several `host:port`, comma-separated (a client that fails over between them). */
  readonly hostList?: boolean;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Why `value` is not a URL the driver can use, or undefined when it is. */
export function urlProblem(value: string, spec: UrlOptionSpec): string | undefined {
  if (spec.words?.includes(value)) return undefined;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(value)?.[1];
  if (scheme === undefined || !spec.schemes.includes(scheme)) return 'unsupported scheme';
  const authority = value.slice(scheme.length + 3).split(/[/?#]/, 1)[0] ?? '';
  // A list of hosts is checked one host at a time: no URL parser takes `a:6650,b:6650` as one authority.
  const candidates = spec.hostList && authority.includes(',') ? authority.split(',').map((host) => `${scheme}://${host}`) : [value];
  for (const candidate of candidates) {
    let parsed: URL;
    try {
      parsed = new URL(candidate);
    } catch {
      return 'not a parsable URL';
    }
    if (parsed.hostname === '') return 'no host';
  }
  return undefined;
}

/** The URL as it may be shown: a password inside it replaced, since error messages reach logs. */
export function redactUrl(value: string): string {
  return value.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#@]*@/, '$1:***@');
}

/**
 * A URL setting, checked when the config is read (so a typo gets the file, line and column like any other
 * config error, not a failure when the driver connects): one of the driver's schemes, parsable, with a host.
 * The JSON Schema carries the scheme as a pattern.
 */
export function urlOption(spec: UrlOptionSpec) {
  const alternatives = [...spec.schemes.map((s) => `${escapeRegExp(s)}://`), ...(spec.words ?? []).map((w) => `${escapeRegExp(w)}$`)];
  const expected = [...spec.schemes.map((s) => `${s}://`), ...(spec.words ?? []).map((w) => `\`${w}\``)].join(', ');
  return z
    .string()
    .regex(new RegExp(`^(${alternatives.join('|')})`), {
      error: (issue) => `expected a URL starting ${expected}; got ${JSON.stringify(redactUrl(String(issue.input)))}`,
    })
    .superRefine((value, ctx) => {
      const problem = urlProblem(value, spec);
      // The scheme was refused above already; say only what the pattern cannot see.
      if (problem !== undefined && problem !== 'unsupported scheme')
        ctx.addIssue({ code: 'custom', message: `${problem}: ${JSON.stringify(redactUrl(value))} (expected e.g. ${spec.schemes[0]}://host:port)` });
    });
}
