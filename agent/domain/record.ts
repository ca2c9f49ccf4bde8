/**
 * The ground floor: what flows through the agent. Nothing here imports anything; every other layer may
 * import these types.
 */

/** One record: a plain object of CBOR-encodable values. The queue stamps `ts` (ms since epoch) if absent. */
export type AgentRecord = { [field: string]: unknown };

/** Where a source is in its input (a DB high-water mark, a byte offset…); committed with its records. */
export type Cursor = string | number | boolean | null | Cursor[] | { [key: string]: Cursor };
