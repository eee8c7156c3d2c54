// What the module manager needs from a guest's module engine, whichever server it is (nginx: engine.ts +
// nginx-conf.ts; lighttpd: lighttpd-engine.ts + lighttpd-conf.ts). The choice is made in one place: the daemon
// setting `module-engine` (src/host/config.ts), passed to the ModuleManager as `engine`: one server for every
// guest, or `auto` (the default), which picks per guest (engineFor).
import type { EngineModule } from './nginx-conf.js';
import type { ModuleLimits } from './types.js';

export const ENGINE_KINDS = ['nginx', 'lighttpd'] as const;
export type EngineKind = (typeof ENGINE_KINDS)[number];
/**
 * The daemon setting `module-engine`: one server for every guest, or `auto`: per guest, lighttpd (one process per
 * module, the cheaper server at small responses) for a guest whose modules are all `http`, unless its traffic is
 * dominated by large responses (engine-choice.ts), then nginx; nginx for a guest with a `stream` module (its gate
 * needs nginx's auth_request). A guest whose module set or traffic crosses that line switches engines.
 */
export const ENGINE_SETTINGS = ['auto', 'nginx', 'lighttpd'] as const;
export type EngineSetting = (typeof ENGINE_SETTINGS)[number];
/** The module engine setting a daemon uses when its settings name none. */
export const DEFAULT_ENGINE: EngineSetting = 'auto';

/**
 * The server for a guest whose modules have these kinds under `setting` (auto: nginx when one is `stream` or
 * lighttpd is not installed, else what the guest's traffic calls for, `traffic`: lighttpd until it says otherwise).
 */
export function engineFor(
  setting: EngineSetting,
  kinds: Iterable<string>,
  lighttpdInstalled: boolean,
  traffic: EngineKind = 'lighttpd',
): EngineKind {
  if (setting !== 'auto') return setting;
  for (const k of kinds) if (k === 'stream') return 'nginx';
  return lighttpdInstalled ? traffic : 'nginx';
}

export interface EngineConfig {
  /** Increases with every change of the guest's module set (nginx answers it on its control socket). */
  generation: number;
  modules: EngineModule[];
  limits: ModuleLimits;
  /** nginx `disable_symlinks` (default true); off only to measure its cost (bench). lighttpd ignores it. */
  disableSymlinks?: boolean;
}

/** Connections now and totals since start; fields an engine does not report are NaN. */
export interface StubStatus {
  active: number;
  accepts: number;
  handled: number;
  requests: number;
  reading: number;
  writing: number;
  waiting: number;
}

/** One module's own server process (lighttpd): pid, resident memory (VmRSS) and open connections (BusyServers). */
export interface ModuleProcessReport { pid?: number; rssBytes?: number; active?: number }

/** An engine's report of an unexpected exit: `module` names the module whose process died (lighttpd). */
export type EngineExit = (code: number | null, signal: NodeJS.Signals | null, module?: string) => void;

export interface ModuleEngine {
  readonly kind: EngineKind;
  /** Run directory parts: root/ (mount point), conf/, log/ (access logs, control socket), gate/ (stream gate). */
  readonly dirs: { root: string; conf: string; log: string; gate: string };
  /**
   * How the manager rotates an access log: `rename` it and call reopenLogs() (nginx), or `truncate` it in place
   * (lighttpd opens it O_APPEND before its chroot and could not reopen it after).
   */
  readonly logRotation: 'rename' | 'truncate';
  /** Some server of the engine runs (nginx: its master; lighttpd: any module's process). */
  readonly running: boolean;
  /**
   * Ids of the modules of the configuration written last whose server is not running (nginx: all of them while
   * its master is down; lighttpd: those whose own process is down). The manager restores only these.
   */
  down(): string[];
  /** Make the run directory. */
  prepare(): void;
  /** Write the configuration for this module set (used by the next start or reload). */
  configure(c: EngineConfig): void;
  /** Start with the configuration written; shareFd is the guest's share, opened by the daemon. */
  start(shareFd: number, generation: number): Promise<void>;
  /**
   * Apply the configuration written (nginx: graceful reload; lighttpd: stop the processes of modules gone or
   * changed and start those of modules new or down, opening the share again; the others keep running).
   */
  reload(generation: number, openShare: () => number): Promise<void>;
  reopenLogs(): void;
  stop(): Promise<void>;
  removeDirs(): void;
  /** Host pid of the server's main process (lighttpd: the first module's; tests kill it to prove the restart). */
  masterPid(): number | undefined;
  /** Host pid of the process serving module `id` (nginx: its master, shared by all modules). */
  modulePid(id: string): number | undefined;
  /** Connections and requests of the whole engine (lighttpd: the sum over its modules' processes). */
  status(): Promise<StubStatus>;
  /** Per module: its process, that process's resident memory and open connections (engines with one per module). */
  moduleReports?(): Promise<Record<string, ModuleProcessReport>>;
}
