// Host-side middleware modules (issue 4): the daemon creates one ModuleManager and forwards its events.
export { ModuleManager, checkOptions, type ModuleManagerOptions } from './manager.js';
export type { EngineReport, EngineView } from './guest-engine.js';
export {
  DEFAULT_ENGINE_CHOICE,
  ENGINE_MIN_DWELL_MS,
  ENGINE_MIN_EVIDENCE_MS,
  ENGINE_MIN_REQUESTS,
  ENGINE_TO_LIGHTTPD_MEAN_BYTES,
  ENGINE_TO_NGINX_MEAN_BYTES,
  ENGINE_WINDOW_MS,
  type EngineChoiceOptions,
} from './engine-choice.js';
export { moduleBackend, parseStartBody, type ModuleBackendAdapter, type ModuleGuestRecord } from './backend.js';
export type { ModuleEvent, ModuleGuest, ModuleInfo, ModuleKind, ModuleLimits, ModuleStartOptions, EngineResources } from './types.js';
