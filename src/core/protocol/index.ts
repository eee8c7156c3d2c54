// Control-channel protocol (pure): frames, messages, op registry. Spec: docs/protocol.md.
export * from './frame.js';
export * from './message.js';
export * from './registry.js';
export * from './ops/builtin.js';
export { check as checkSchema } from './validate.js';
export * from './ops/modules.js';
export * from './ops/tier.js';
export * from './ops/offload.js';
