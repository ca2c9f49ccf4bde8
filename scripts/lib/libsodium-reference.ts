/**
 * libsodium (its WebAssembly build, a development dependency only): the REFERENCE implementation the agent's own
 * crypto is checked against. The agent never loads it (agent/keys/x25519.ts, agent/envelope/aead.ts run on
 * node:crypto); the test vectors are made with it (scripts/make-vectors.ts), and tests compare ours with it.
 */
import sodium from 'libsodium-wrappers';
import type { KeyExchange } from '../../agent/keys/x25519.ts';

export type LibsodiumReference = typeof sodium;

/** libsodium, initialised (its WebAssembly start-up is awaited once). */
export async function libsodiumReference(): Promise<LibsodiumReference> {
  await sodium.ready;
  return sodium;
}

/** libsodium's crypto_kx_* and crypto_scalarmult* behind the agent's KeyExchange, to derive keys the reference way. */
export function referenceKeyExchange(na: LibsodiumReference): KeyExchange {
  return {
    keyPair: () => na.crypto_kx_keypair(),
    publicKey: (privateKey) => na.crypto_scalarmult_base(privateKey),
    sharedSecret: (privateKey, publicKey) => na.crypto_scalarmult(privateKey, publicKey),
    clientSessionKeys: (client, serverPublic) => {
      const keys = na.crypto_kx_client_session_keys(client.publicKey, client.privateKey, serverPublic);
      return { rx: keys.sharedRx, tx: keys.sharedTx };
    },
    serverSessionKeys: (server, clientPublic) => {
      const keys = na.crypto_kx_server_session_keys(server.publicKey, server.privateKey, clientPublic);
      return { rx: keys.sharedRx, tx: keys.sharedTx };
    },
  };
}
