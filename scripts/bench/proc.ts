import { readFileSync } from 'node:fs';

/** Fields of /proc/<pid>/io (bytes); zeros where the kernel does not expose them. */
export interface IoCounters {
  rchar: number;
  wchar: number;
  syscw: number;
  write_bytes: number;
  cancelled_write_bytes: number;
}

export function readIo(pid: number | 'self' = 'self'): IoCounters {
  const out: IoCounters = { rchar: 0, wchar: 0, syscw: 0, write_bytes: 0, cancelled_write_bytes: 0 };
  try {
    for (const line of readFileSync(`/proc/${pid}/io`, 'utf8').split('\n')) {
      const [key, value] = line.split(':');
      if (key && value && key in out) out[key as keyof IoCounters] = Number(value.trim());
    }
  } catch {
    // not Linux, or no permission: leave zeros
  }
  return out;
}

export function ioDelta(before: IoCounters, after: IoCounters): IoCounters {
  return {
    rchar: after.rchar - before.rchar,
    wchar: after.wchar - before.wchar,
    syscw: after.syscw - before.syscw,
    write_bytes: after.write_bytes - before.write_bytes,
    cancelled_write_bytes: after.cancelled_write_bytes - before.cancelled_write_bytes,
  };
}

export interface Memory {
  /** VmHWM: peak resident set since the process image started (an execve starts it again). */
  hwm: number;
  rss: number;
  anon: number;
  /** RssFile: resident file-backed pages (the executable's code and its mapped blob, shared libraries). */
  file: number;
}

/** VmHWM, VmRSS, RssAnon and RssFile from /proc/<pid>/status, in bytes; zeros once the process is gone. */
export function readMemory(pid: number | 'self' = 'self'): Memory {
  const out: Memory = { hwm: 0, rss: 0, anon: 0, file: 0 };
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? 0) * 1024;
    out.hwm = kb('VmHWM');
    out.rss = kb('VmRSS');
    out.anon = kb('RssAnon');
    out.file = kb('RssFile');
  } catch {
    // leave zeros
  }
  return out;
}

/** User plus system CPU seconds of another process, from /proc/<pid>/stat (clock ticks of 1/100 s on Linux). */
export function readCpuSeconds(pid: number): number {
  try {
    // The command name (field 2) may contain spaces: split after its closing parenthesis.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Parses `--name value` pairs (and bare `--flag`) into a map. */
export function parseArgs(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf('=');
    if (eq > 0) {
      // `--name=value`: the form for a value that itself starts with "--".
      out.set(arg.slice(2, eq), arg.slice(eq + 1));
      continue;
    }
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out.set(arg.slice(2), 'true');
    else {
      out.set(arg.slice(2), next);
      i++;
    }
  }
  return out;
}

export function numberArg(args: Map<string, string>, name: string, fallback: number): number {
  const raw = args.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`--${name} must be a number, got ${raw}`);
  return value;
}

/** Workers print exactly one line of JSON on stdout: their result. */
export function report(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Anonymous memory of a process by kind of mapping, in bytes (from /proc/<pid>/smaps). */
export interface AnonymousByMapping {
  /** glibc's main arena (`[heap]`): malloc'd memory, freed chunks it keeps included. */
  mallocHeap: number;
  /** V8's heap pages: anonymous read-write mappings of exactly 256 KiB. */
  v8Pages: number;
  /** Every other anonymous mapping: V8's code reservation, large objects, malloc's mmapped chunks, stacks. */
  other: number;
}

const V8_PAGE_BYTES = 256 * 1024;

/**
 * Groups a process's anonymous memory by mapping, to tell V8's heap from malloc's. A heuristic: V8 maps its
 * pages one by one at 256 KiB, which no other part of the agent does; with MALLOC_ARENA_MAX=1 malloc has one
 * arena, the `[heap]`, and maps larger chunks on their own (counted under `other`).
 */
export function readAnonymousByMapping(pid: number): AnonymousByMapping {
  const out: AnonymousByMapping = { mallocHeap: 0, v8Pages: 0, other: 0 };
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return out;
  }
  let kind: keyof AnonymousByMapping = 'other';
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const size = Number.parseInt(head[2]!, 16) - Number.parseInt(head[1]!, 16);
      const name = head[4]!.trim();
      kind = name === '[heap]' ? 'mallocHeap' : name === '' && head[3] === 'rw-p' && size === V8_PAGE_BYTES ? 'v8Pages' : 'other';
      continue;
    }
    if (line.startsWith('Anonymous:')) out[kind] += Number(/(\d+) kB/.exec(line)?.[1] ?? 0) * 1024;
  }
  return out;
}
