/**
 * The trust chain of fleet management (docs/remote.md, "Trust"). The API other rooms use:
 *
 *   new TrustChain(anchor: { keys: string[]; threshold: number }, store: TrustStore, { maxBytes? })
 *     .acceptRoot(input, now): { version, changed }        root envelope, or an array of them (a chain)
 *     .acceptRevocations(input, now): { version, changed }
 *     .verify(input, 'config' | 'command' | 'update-manifest' | 'update-timestamp', now): { document, signer: { keyId, name }, certificate }
 *     .verifyRootThreshold(input, what)   a rollback manifest: a threshold of root keys signed it too
 *     .root: { version, threshold, keys }     .revocations: { version, keys: Set<key id> } | undefined
 *   Every method throws a `Refusal` (AgentError code REMOTE_REFUSED) whose `reason` is a `RefusalReason`.
 *   `input` is the message as received: bytes, text, or JSON already parsed; its size is checked first.
 *   `changed: false` means the device had exactly that already (a retained message seen again): no refusal.
 *
 *   new FileTrustStore(dir)   <dir>/root.json and <dir>/revocations.json, 0600 in a 0700 dir, atomic writes
 *   signEnvelope(kind, document, signers: Ed25519Pair[], certificate?): Envelope
 *   loadPrivateKeyFile(path, role?) / loadPublicKeyFile(path, role?) / writeKeyFiles(...)
 */
export {
  type Accepted,
  type DocumentByVerifiedKind,
  type RevocationState,
  type RootState,
  type Signer,
  type TrustAnchor,
  TrustChain,
  type Verified,
} from './chain.ts';
export {
  CLOCK_SKEW_MS,
  type CommandDocument,
  type ConfigDocument,
  checkWindow,
  type Document,
  type DocumentOf,
  decodeDocument,
  KEY_ID_PATTERN,
  MAX_COMMAND_LIFETIME_MS,
  type OperatorCertDocument,
  type RevocationsDocument,
  MAX_UPDATE_BYTES,
  type RootDocument,
  type UpdateManifestDocument,
  type UpdateTimestampDocument,
} from './documents.ts';
export { DEFAULT_MAX_ENVELOPE_BYTES, DOCUMENT_KINDS, type DocumentKind, type Envelope, pae, parseEnvelope, payloadTypeOf } from './dsse.ts';
export { decodeKey, type Ed25519Pair, encodeKey, generatePair, keyIdOf, pairFromSeed } from './ed25519.ts';
export {
  describeKey,
  type KeyRole,
  loadPrivateKeyFile,
  loadPublicKeyFile,
  type PrivateKeyFile,
  type PublicKeyFile,
  publicFileOf,
  writeKeyFiles,
} from './key-files.ts';
export { isRefusal, REFUSAL_REASONS, Refusal, type RefusalReason } from './refusal.ts';
export { rfc3339, signEnvelope } from './sign.ts';
export { FileTrustStore, MemoryTrustStore, type TrustStore } from './store.ts';
