import sodiumModule from 'libsodium-wrappers';

/** libsodium (WASM) initialised once; its start-up costs ~30 ms, paid only by commands that need it. */
export async function sodium(): Promise<typeof sodiumModule> {
  await sodiumModule.ready;
  return sodiumModule;
}
