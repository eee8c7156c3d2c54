// Control-channel I/O: transports (Unix socket, virtio-serial) and the RPC peer. Spec: docs/protocol.md.
export * from './transport.js';
export * from './peer.js';
export * from './reply-cache.js';
