// hylicsd's configuration file (YAML, e.g. /etc/hylics/hylicsd.yaml): the same keys as `hylics daemon`'s flags,
// flags win. One table says which keys exist, their kind, and which of them a reload (SIGHUP, `systemctl reload`)
// applies while guests run; the rest need a restart (which leaves guests running, as any stop does).
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';
import { HylicsError } from '../core/errors/index.js';
import { parseSize } from '../core/units.js';
import { SANDBOX_ISOLATIONS } from './drivers/sandbox.js';
import { DEFAULT_ENGINE, ENGINE_SETTINGS } from './modules/engine-api.js';
import { SOCKET_OFFLOAD_COPIES } from '../core/protocol/ops/offload.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export const LOG_FORMATS = ['auto', 'text', 'json'] as const;
/** How sandbox guests are isolated: container is the boundary (docs/operations.md). */
export { SANDBOX_ISOLATIONS as SANDBOX_ISOLATION_VALUES };
/** The server behind every guest's host-side modules (docs/modules.md). */
export { ENGINE_SETTINGS as MODULE_ENGINE_VALUES };
/** How hylicsd takes sandbox guests' sockets for socket offload (docs/offload-socket.md). */
export { SOCKET_OFFLOAD_COPIES as SOCKET_OFFLOAD_COPY_VALUES };

type Kind = { type: 'path' } | { type: 'size' } | { type: 'string' } | { type: 'boolean' } | { type: 'list' } | { type: 'enum'; values: readonly string[] };

/** Every setting: its flag/key name (kebab case), kind, and whether a reload applies it live. */
export const DAEMON_SETTINGS = {
  'state-dir': { kind: { type: 'path' }, live: false },
  listen: { kind: { type: 'string' }, live: true },
  'allow-remote-api': { kind: { type: 'boolean' }, live: true },
  'api-host': { kind: { type: 'list' }, live: true },
  'guest-firewall': { kind: { type: 'boolean' }, live: false },
  'log-level': { kind: { type: 'enum', values: LOG_LEVELS }, live: true },
  'log-format': { kind: { type: 'enum', values: LOG_FORMATS }, live: true },
  'share-budget': { kind: { type: 'size' }, live: false },
  'sandbox-isolation': { kind: { type: 'enum', values: SANDBOX_ISOLATIONS }, live: false },
  'module-engine': { kind: { type: 'enum', values: ENGINE_SETTINGS }, live: false },
  'socket-offload-copy': { kind: { type: 'enum', values: SOCKET_OFFLOAD_COPIES }, live: false },
} as const satisfies Record<string, { kind: Kind; live: boolean }>;

export type SettingKey = keyof typeof DAEMON_SETTINGS;

export interface DaemonSettings {
  stateDir: string;
  listen?: string;
  allowRemoteApi: boolean;
  apiHost: string[];
  guestFirewall: boolean;
  logLevel: (typeof LOG_LEVELS)[number];
  logFormat: (typeof LOG_FORMATS)[number];
  /** Host memory for all controlled shares, e.g. "8G" (checked with parseSize). */
  shareBudget?: string;
  /** For sandbox guests started from now on (a running guest keeps the isolation it was started with). */
  sandboxIsolation: (typeof SANDBOX_ISOLATIONS)[number];
  /** The server of guests' module engines started from now on (a running engine keeps its server). */
  moduleEngine: (typeof ENGINE_SETTINGS)[number];
  /** auto: sandbox guests get the descriptor copy; repair: the TCP_REPAIR handoff only. */
  socketOffloadCopy: (typeof SOCKET_OFFLOAD_COPIES)[number];
}

/** `log-level` -> `logLevel`: the commander attribute name of the flag. */
export function attrOf(key: string): string {
  return key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function bad(file: string, key: string, msg: string): HylicsError {
  return new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${file}: ${key}: ${msg}`, { file, key });
}

/** The `where` of values from the command line. */
export const FLAGS = 'command line';

/** Check one value against its kind (from a file or a flag); returns it in the settings' type. */
export function checkSetting(key: SettingKey, v: unknown, where: string): unknown {
  const kind: Kind = DAEMON_SETTINGS[key].kind;
  switch (kind.type) {
    case 'path':
      // a flag may be relative to the working directory; a file's path must not depend on where it is read from
      if (typeof v === 'string' && v !== '' && where === FLAGS) return resolve(v);
      if (typeof v !== 'string' || !isAbsolute(v)) throw bad(where, key, `must be an absolute path, got ${JSON.stringify(v)}`);
      return v;
    case 'size':
      if (typeof v !== 'string' && typeof v !== 'number') throw bad(where, key, `must be a size like 8G, got ${JSON.stringify(v)}`);
      try { parseSize(v, key); } catch (e) { throw bad(where, key, (e as Error).message); }
      return String(v);
    case 'string':
      if (typeof v !== 'string' || v === '') throw bad(where, key, `must be a non-empty string, got ${JSON.stringify(v)}`);
      return v;
    case 'boolean':
      if (typeof v !== 'boolean') throw bad(where, key, `must be true or false, got ${JSON.stringify(v)}`);
      return v;
    case 'list':
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== '')) throw bad(where, key, `must be a list of names, got ${JSON.stringify(v)}`);
      return v;
    case 'enum':
      if (typeof v !== 'string' || !kind.values.includes(v)) throw bad(where, key, `must be one of ${kind.values.join(', ')}, got ${JSON.stringify(v)}`);
      return v;
  }
}

/** Read and check a config file. An empty file is an empty config; an unknown key is refused (a typo would
 * otherwise be ignored silently). */
export async function readConfigFile(file: string): Promise<Partial<Record<SettingKey, unknown>>> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (e) {
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `cannot read config file ${file}: ${(e as Error).message}`, { file });
  }
  let doc: unknown;
  try { doc = parse(text); } catch (e) {
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${file} is not valid YAML: ${(e as Error).message}`, { file });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${file}: wants a mapping of settings (key: value)`, { file });
  const out: Partial<Record<SettingKey, unknown>> = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!Object.hasOwn(DAEMON_SETTINGS, k)) throw bad(file, k, `unknown setting (known: ${Object.keys(DAEMON_SETTINGS).join(', ')})`);
    out[k as SettingKey] = checkSetting(k as SettingKey, v, file);
  }
  return out;
}

export const DEFAULT_SETTINGS: DaemonSettings = {
  stateDir: '/var/lib/hylics',
  allowRemoteApi: false,
  apiHost: [],
  guestFirewall: true,
  logLevel: 'info',
  logFormat: 'auto',
  sandboxIsolation: 'container',
  moduleEngine: DEFAULT_ENGINE,
  socketOffloadCopy: 'auto',
};

/** Defaults, then the file, then the flags given on the command line (flags win). */
export function mergeSettings(
  file: Partial<Record<SettingKey, unknown>>,
  flags: Partial<Record<SettingKey, unknown>>,
  defaults: DaemonSettings = DEFAULT_SETTINGS,
): DaemonSettings {
  const s: Record<string, unknown> = { ...defaults };
  for (const src of [file, flags]) for (const [k, v] of Object.entries(src)) if (v !== undefined) s[attrOf(k)] = v;
  return s as unknown as DaemonSettings;
}

/** The keys whose values differ between two settings, split into those a reload applies and those it cannot. */
export function diffSettings(a: DaemonSettings, b: DaemonSettings): { live: SettingKey[]; restart: SettingKey[] } {
  const live: SettingKey[] = [];
  const restart: SettingKey[] = [];
  for (const key of Object.keys(DAEMON_SETTINGS) as SettingKey[]) {
    const attr = attrOf(key) as keyof DaemonSettings;
    if (JSON.stringify(a[attr]) === JSON.stringify(b[attr])) continue;
    (DAEMON_SETTINGS[key].live ? live : restart).push(key);
  }
  return { live, restart };
}
