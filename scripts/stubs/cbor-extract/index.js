// cbor-x loads the native accelerator `cbor-extract` if it can and otherwise uses its JavaScript decoder.
// edge-agent ships the JavaScript path only: gateways mostly encode (the accelerator speeds decoding), the
// single executable would have to carry a native addon per platform, and the accelerator's per-platform
// packages are not reachable from every install source. Throwing here is how cbor-x learns it is absent.
throw new Error('cbor-extract is not shipped with edge-agent; cbor-x uses its JavaScript decoder');
