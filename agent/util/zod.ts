/**
 * The project's one import of zod, configured before any schema is made (zod reads its configuration when a
 * schema is constructed): every module that makes schemas takes `z` from here (test/architecture checks it).
 *
 * Cycle support off. zod's classic build gives every object and array schema a memoizer, so that a value
 * holding a reference cycle can be parsed through a recursive schema; on its first parse each one walks its
 * whole subtree to learn whether it is recursive (≈ 3 ms of every start, in the configuration's first
 * parse), and every schema made carries the wrapper. The project has no recursive schema (no `z.lazy`), so
 * a parse is bounded by the schema's depth whatever the input: a configuration whose YAML aliases make a
 * cycle is reported as invalid where the cycle meets a value of another type (test/config/operator-errors.test.ts,
 * "aliases").
 */
import { z } from 'zod';

const NO_CYCLES: z.core.$ZodMemoizer = {
  attach() {},
  guard() {},
  alloc: (_inst, _payload, empty) => empty,
};

z.config({ memoizer: NO_CYCLES });

export { z };
