// Host-side middleware modules (issue 4): the daemon creates one ModuleManager and forwards its events.
export { ModuleManager, checkOptions, type ModuleManagerOptions } from './manager.js';
export type { EngineReport } from './guest-engine.js';
export { moduleBackend, parseStartBody, type ModuleBackendAdapter, type ModuleGuestRecord } from './backend.js';
export type { ModuleEvent, ModuleGuest, ModuleInfo, ModuleKind, ModuleLimits, ModuleStartOptions, EngineResources } from './types.js';
