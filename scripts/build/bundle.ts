/**
 * One CommonJS file from agent/cli/bin.ts, the main script of the single executable (esbuild strips the
 * TypeScript). Every dependency is inlined except:
 *  - better-sqlite3's addon: loaded at run time from the path agent/util/sqlite.ts passes as nativeBinding
 *    (the .node file is an asset of the executable, see build.ts);
 *  - serialport's addon: likewise an asset, loaded by a replacement for its node-gyp-build lookup;
 *  - cbor-extract, cbor-x's optional native accelerator: replaced by a module that throws, which cbor-x
 *    catches and then decodes in JavaScript. package.json already overrides it with such a stub
 *    (scripts/stubs/cbor-extract); the plugin keeps the executable free of the addon whatever is installed.
 */
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { loadOnUse } from './load-on-use.ts';

const withoutCborExtract: Plugin = {
  name: 'without-cbor-extract',
  setup(b) {
    b.onResolve({ filter: /^cbor-extract$/ }, () => ({ path: 'cbor-extract', namespace: 'edge-agent-stub' }));
    b.onLoad({ filter: /^cbor-extract$/, namespace: 'edge-agent-stub' }, () => ({
      contents: "throw new Error('cbor-extract is not part of the edge-agent executable');",
      loader: 'js',
    }));
  },
};

/**
 * serialport's binding is found by node-gyp-build, which searches the package's folders on disk: inside
 * the executable there are none. Its loader is replaced by one that requires the prebuilt addon the build
 * packed as an asset, written out at the first load (agent/util/packed-addon.ts, as for better-sqlite3).
 */
const PACKED_ADDON = fileURLToPath(new URL('../../agent/util/packed-addon.ts', import.meta.url));
const serialportBindingFromAssets: Plugin = {
  name: 'serialport-binding-from-assets',
  setup(b) {
    b.onResolve({ filter: /^node-gyp-build$/ }, (args) =>
      /@serialport[\\/]bindings-cpp/.test(args.importer) ? { path: 'serialport-binding', namespace: 'edge-agent-stub' } : undefined,
    );
    b.onLoad({ filter: /^serialport-binding$/, namespace: 'edge-agent-stub' }, () => ({
      contents: `const { packedAddonPath } = require(${JSON.stringify(PACKED_ADDON)});\nmodule.exports = () => require(packedAddonPath('serialport'));`,
      loader: 'js',
      resolveDir: dirname(PACKED_ADDON),
    }));
  },
};

/**
 * The executable runs the bundle as its main script, whose `require` loads only Node's built-in modules.
 * The bundle replaces it at the top with a full one, so that the native addons load from the files
 * packed-addon.ts writes and optional dependencies that are absent (bufferutil, pg-native, …) fail with
 * MODULE_NOT_FOUND as their callers expect.
 */
const FULL_REQUIRE = 'require = require("node:module").createRequire(__filename);';
/**
 * ES modules bundled into CommonJS lose `import.meta.url`; some packages read it at load (a client library's
 * `createRequire(import.meta.url)`), which then throws "Invalid URL" before any command runs. It becomes the
 * bundle's own file URL.
 */
const IMPORT_META_URL = 'var __edgeImportMetaUrl = require("node:url").pathToFileURL(__filename).href;';

/**
 * Optional heavy libraries, each built into a script of its own (dist/bundle/lazy/NAME.cjs, an asset of the
 * executable) and evaluated at its first use, so that a config that does not use them pays neither their
 * evaluation nor their source text on the heap (V8 keeps a script's whole source). Name → the import
 * specifiers it carries; an import of one of them anywhere in the main script becomes
 * `packedScript(NAME)[SPECIFIER]` (agent/util/packed-script.ts), which evaluates the script when the
 * importing module is evaluated: what imports them must itself be loaded on demand (a dynamic `import()`),
 * which test/build/lazy-scripts.test.ts checks for a plain `run`. See docs/packaging.md, "Lazy scripts".
 */
export const LAZY_SCRIPTS: Readonly<Record<string, readonly string[]>> = {
  kafka: ['@platformatic/kafka'],
  mysql: ['mysql2'],
  pg: ['pg'],
  modbus: ['modbus-serial'],
  broker: ['aedes'],
  ws: ['ws'],
};
/**
 * Modules a lazy script evaluates before the libraries it carries, by script name: set-up that must precede a
 * library's own evaluation and reach the library's copy of a dependency (the main script's copy is another).
 */
const LAZY_SCRIPT_PRELUDES: Readonly<Record<string, readonly string[]>> = {
  broker: [fileURLToPath(new URL('../../agent/broker/packet-writer.ts', import.meta.url))],
};
const SCRIPT_OF = new Map(Object.entries(LAZY_SCRIPTS).flatMap(([name, specs]) => specs.map((spec) => [spec, name] as const)));
const PACKED_SCRIPT = fileURLToPath(new URL('../../agent/util/packed-script.ts', import.meta.url));
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const fromLazyScripts: Plugin = {
  name: 'from-lazy-scripts',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(${[...SCRIPT_OF.keys()].map(escapeRegExp).join('|')})$`) }, (args) => ({
      path: args.path,
      namespace: 'edge-agent-lazy',
    }));
    b.onLoad({ filter: /.*/, namespace: 'edge-agent-lazy' }, (args) => ({
      // The library's own `require()` result: module.exports for CommonJS, for ES modules the namespace with
      // `__esModule`, which esbuild's interop at the import site reads as it reads an inlined one.
      contents: `const { packedScript } = require(${JSON.stringify(PACKED_SCRIPT)});\nmodule.exports = packedScript(${JSON.stringify(SCRIPT_OF.get(args.path))}, __filename)[${JSON.stringify(args.path)}];`,
      loader: 'js',
      resolveDir: dirname(PACKED_SCRIPT),
    }));
  },
};

export interface BundleResult {
  readonly outfile: string;
  readonly bytes: number;
  /** Bytes of bundled output per package (or "agent" / "drivers"), largest first. */
  readonly byPackage: [string, number][];
  /** The lazy scripts: name → file (dist/bundle/lazy/NAME.cjs) and bytes. */
  readonly lazy: Record<string, { file: string; bytes: number }>;
}

function packageOf(input: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
  if (m?.[1]) return m[1];
  return input.split('/')[0] ?? input;
}

/** What the main script and the lazy scripts are built with alike. */
const COMMON = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  // Whitespace and syntax only: identifiers stay readable in stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  banner: { js: `${FULL_REQUIRE}\n${IMPORT_META_URL}` },
  logLevel: 'warning',
  // agent/cli/main.ts runs itself under `import.meta.main`; in the bundle only bin.ts runs it.
  define: { 'import.meta.main': 'false', 'import.meta.url': '__edgeImportMetaUrl' },
  // The Kafka client's WebAssembly helpers read a .wasm file beside their module at load; their `bundled`
  // build carries it inline, which a single executable needs.
  alias: { '@platformatic/wasm-utils': '@platformatic/wasm-utils/bundled' },
  metafile: true as const,
} satisfies BuildOptions;

/**
 * The executable's main script, agent/util/packed-main.ts: it compiles the bundle (an asset) with its code
 * cache. Built apart from the bundle, with nothing inlined but itself: it requires only built-in modules.
 */
export async function bundleLoader(entry: string, outfile: string): Promise<number> {
  const r = await build({ ...COMMON, banner: {}, define: {}, entryPoints: [entry], outfile });
  return Object.values(r.metafile.outputs)[0]?.bytes ?? 0;
}

/**
 * The executable compiles its scripts without a loader for dynamic imports (agent/util/packed-main.ts,
 * packed-script.ts): Node's only one for them (vm's USE_MAIN_CONTEXT_DEFAULT_LOADER) printed an
 * ExperimentalWarning into the agent's log at the first `import()`. An `import()` of a bundled module is
 * inlined by the bundler; one it leaves as is (a built-in module, a package kept outside the bundle) would fail
 * at run time, so the build fails here instead: take a built-in with `process.getBuiltinModule`, a package with
 * `createRequire`.
 */
function refuseDynamicImports(meta: Metafile, outfile: string): void {
  const left: string[] = [];
  for (const [input, { imports }] of Object.entries(meta.inputs)) {
    for (const i of imports) if (i.kind === 'dynamic-import' && i.external === true) left.push(`${input}: import(${JSON.stringify(i.path)})`);
  }
  // One whose specifier is not a literal (`import(name)`) is in no metafile: look for the expression itself.
  const output = left.length > 0 ? '' : readFileSync(outfile, 'utf8');
  for (const m of output.matchAll(/(?<![\w$.])import\s*\(/g)) left.push(`…${output.slice(Math.max(0, m.index - 60), m.index + 40)}…`);
  if (left.length > 0) throw new Error(`${outfile}: dynamic imports the executable cannot load:\n  ${left.join('\n  ')}`);
}

export async function bundle(entry: string, outfile: string): Promise<BundleResult> {
  const result = await build({
    ...COMMON,
    entryPoints: [entry],
    outfile,
    plugins: [withoutCborExtract, serialportBindingFromAssets, loadOnUse, fromLazyScripts],
  });
  const meta: Metafile = result.metafile;
  refuseDynamicImports(meta, outfile);
  const out = Object.values(meta.outputs)[0];
  const byPackage = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(out?.inputs ?? {})) {
    const p = packageOf(input);
    byPackage.set(p, (byPackage.get(p) ?? 0) + bytesInOutput);
  }
  const lazy: Record<string, { file: string; bytes: number }> = {};
  rmSync(join(dirname(outfile), 'lazy'), { recursive: true, force: true });
  for (const [name, specs] of Object.entries(LAZY_SCRIPTS)) {
    const file = join(dirname(outfile), 'lazy', `${name}.cjs`);
    // `require()` of each specifier, as the main script's import site expects (see fromLazyScripts).
    const prelude = (LAZY_SCRIPT_PRELUDES[name] ?? []).map((m) => `require(${JSON.stringify(m)});\n`).join('');
    const contents = `${prelude}module.exports = {${specs.map((s) => `${JSON.stringify(s)}: require(${JSON.stringify(s)})`).join(', ')}};`;
    const r = await build({
      ...COMMON,
      stdin: { contents, resolveDir: dirname(entry), sourcefile: `lazy-${name}.cjs`, loader: 'js' },
      outfile: file,
      plugins: [withoutCborExtract],
    });
    refuseDynamicImports(r.metafile, file);
    lazy[name] = { file, bytes: Object.values(r.metafile.outputs)[0]?.bytes ?? 0 };
  }
  return {
    outfile,
    bytes: out?.bytes ?? 0,
    byPackage: [...byPackage].sort((a, b) => b[1] - a[1]),
    lazy,
  };
}
