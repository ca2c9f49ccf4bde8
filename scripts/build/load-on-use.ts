/**
 * Libraries' eager loads that every start of the executable paid for and only some configurations use: each
 * entry names a library file and exact lines of it, and what they become so that the module (one of Node's
 * built-ins, or a part of the library) is loaded when it is first used instead of when the library is
 * evaluated. A start to "agent running" evaluates every module it imports; Node's built-ins cost ≈ 1–2 ms
 * each to load (docs/benchmarks.md, "Start: libraries' eager loads deferred"). test/build/start-builtins.test.ts
 * checks that a plain `run` loads none of them.
 *
 * The build fails when a line is no longer in its file (the library changed): the executable is then not
 * shipped without the change unnoticed, and the entry is updated or dropped.
 */
import { readFile } from 'node:fs/promises';
import type { Plugin } from 'esbuild';

interface LoadOnUse {
  /** The library's file, by path. */
  readonly file: RegExp;
  /** Why, in a few words (the build's error names it). */
  readonly why: string;
  /** Exact text → what replaces it; each must occur in the file. */
  readonly edits: readonly (readonly [string, string])[];
}

export const LOAD_ON_USE: readonly LoadOnUse[] = [
  {
    // MQTT.js's protocol table requires its WebSocket transport (and the `ws` library) at its first connect,
    // whatever the URL's scheme.
    file: /mqtt[\\/]build[\\/]lib[\\/]connect[\\/]index\.js$/,
    why: 'the WebSocket and TLS transports when a ws://, wss:// or mqtts:// URL is used',
    edits: [
      ["protocols.ws = require('./ws').streamBuilder;", "protocols.ws = (...a) => require('./ws').streamBuilder(...a);"],
      ["protocols.wss = require('./ws').streamBuilder;", "protocols.wss = (...a) => require('./ws').streamBuilder(...a);"],
      // The TLS transport (and node:tls) when an mqtts:// URL is used.
      ["protocols.ssl = require('./tls').default;", "protocols.ssl = (...a) => require('./tls').default(...a);"],
      ["protocols.mqtts = require('./tls').default;", "protocols.mqtts = (...a) => require('./tls').default(...a);"],
    ],
  },
  {
    // The TCP and TLS transports require the SOCKS proxy support (`socks`, `ip-address`, which build tables
    // at evaluation).
    file: /mqtt[\\/]build[\\/]lib[\\/]connect[\\/](tcp|tls)\.js$/,
    why: 'SOCKS proxy support when a socksProxy is used',
    edits: [['const socks_1 = __importDefault(require("./socks"));', 'const socks_1 = { get default() { return require("./socks").default; } };']],
  },
  {
    // commander spawns a process only for a subcommand that is an executable of its own (none here).
    file: /commander[\\/]lib[\\/]command\.js$/,
    why: 'node:child_process when commander spawns an executable subcommand',
    edits: [
      [
        "import childProcess from 'node:child_process';",
        "const childProcess = { spawn: (...a) => process.getBuiltinModule('node:child_process').spawn(...a) };",
      ],
    ],
  },
  {
    // The logger writes with sonic-boom on the main thread; pino's worker-thread transports are not used.
    file: /pino[\\/]lib[\\/]tools\.js$/,
    why: "node:worker_threads and pino's transports (thread-stream) when a transport is configured",
    edits: [
      // Read only for an asynchronous destination (the agent's logs are synchronous: agent/log.ts).
      ["const { isMainThread } = require('worker_threads')", ''],
      ['if (!opts.sync && isMainThread) {', "if (!opts.sync && require('worker_threads').isMainThread) {"],
      ["const transport = require('./transport')", "const transport = (...a) => require('./transport')(...a)"],
    ],
  },
  {
    file: /pino[\\/]pino\.js$/,
    why: "pino's transports (thread-stream, node:worker_threads) and its caller's call sites when a transport is used",
    edits: [
      ["module.exports.transport = require('./lib/transport')", "module.exports.transport = (...a) => require('./lib/transport')(...a)"],
      // Every logger made asked V8 for the caller's call sites (which file made it, for a transport's relative
      // paths): their line and column made V8 index the lines of the whole 2.4 MB bundle (≈ 18M instructions,
      // 3 % of a start). A transport given no caller asks for it itself (pino/lib/transport.js).
      ['normalize(instance, caller(), ...args)', 'normalize(instance, undefined, ...args)'],
    ],
  },
  {
    // One assertion, on a file descriptor that is already a number when the logger opens it.
    file: /sonic-boom[\\/]index\.js$/,
    why: 'node:assert at the one assertion that uses it',
    edits: [["const assert = require('assert')", "const assert = (...a) => require('assert')(...a)"]],
  },
  {
    // `debug` (MQTT.js's tracing) looks for an optional package on disk, walking up from the executable's
    // folder at every start; it is not part of the executable.
    file: /debug[\\/]src[\\/]node\.js$/,
    why: 'the search on disk for the optional supports-color package',
    edits: [["const supportsColor = require('supports-color');", 'const supportsColor = undefined;']],
  },
  {
    // Its clock, read at evaluation: the global `performance` loads Node's perf_hooks. MQTT.js's topic alias
    // table is built with it; the clock is needed only by entries with a time to live.
    file: /lru-cache[\\/]dist[\\/]commonjs[\\/]index\.js$/,
    why: "Node's perf_hooks at the first timed entry",
    edits: [
      [
        "const perf = typeof performance === 'object' &&\n    performance &&\n    typeof performance.now === 'function'\n    ? performance\n    : Date;",
        'const perf = { now: () => performance.now() };',
      ],
    ],
  },
];

export const loadOnUse: Plugin = {
  name: 'load-on-use',
  setup(b) {
    for (const entry of LOAD_ON_USE) {
      b.onLoad({ filter: entry.file }, async (args) => {
        let text = await readFile(args.path, 'utf8');
        for (const [from, to] of entry.edits) {
          if (!text.includes(from)) {
            return { errors: [{ text: `${args.path}: "${from}" is not there (the library changed); it was made to load ${entry.why}` }] };
          }
          text = text.replaceAll(from, to);
        }
        return { contents: text, loader: 'js' };
      });
    }
  },
};
