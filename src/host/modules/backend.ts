// Adapter from the daemon's ModuleBackend (src/host/backends.ts: start(record & {sharePath}, body), list, stop,
// stopAll) to the ModuleManager: maps a guest record to a ModuleGuest. A body from HTTP or the channel was
// validated by the module.start schema already; it is checked again here (the command API can be called directly)
// together with the rules a schema cannot say (checkOptions: no `..` in root, nginx-safe names).
import { HylicsError } from '../../core/errors/index.js';
import { checkOptions, type ModuleManager } from './manager.js';
import type { EngineView } from './guest-engine.js';
import type { ModuleInfo, ModuleKind } from './types.js';

/** The part of the daemon's GuestRecord the modules need (structural: no import of the daemon). */
export interface ModuleGuestRecord {
  spec: { name: string };
  network: { guestAddr: string; hostAddr: string; netns?: string };
  sharePath: string;
}

export interface ModuleBackendAdapter {
  start(guest: ModuleGuestRecord, body: Record<string, unknown>): Promise<ModuleInfo>;
  list(guest: string): ModuleInfo[];
  stop(guest: string, id: string): Promise<void>;
  stopAll(guest: string): Promise<void>;
  engine(guest: string): EngineView | undefined;
}

/** Body of POST /v1/guests/{name}/modules: { kind: 'http'|'stream', root: string, port: number, hostPort?: number }. */
export function parseStartBody(body: Record<string, unknown>): {
  kind: ModuleKind;
  root: string;
  port: number;
  hostPort?: number;
} {
  if (typeof body !== 'object' || body === null)
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'body must be a JSON object');
  const { kind, root, port, hostPort } = body;
  if (typeof root !== 'string')
    throw new HylicsError('HYLICS_ERR_MODULE_ROOT', 'root must be a string (a directory inside the share)');
  if (typeof port !== 'number') throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'port must be a number');
  if (hostPort !== undefined && typeof hostPort !== 'number')
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'hostPort must be a number');
  return checkOptions({ kind: kind as ModuleKind, root, port, ...(hostPort !== undefined ? { hostPort } : {}) });
}

export function moduleBackend(manager: ModuleManager): ModuleBackendAdapter {
  return {
    start: (g, body) =>
      manager.start(
        {
          name: g.spec.name,
          sharePath: g.sharePath,
          guestAddr: g.network.guestAddr,
          hostAddr: g.network.hostAddr,
          ...(g.network.netns ? { netns: g.network.netns } : {}),
        },
        parseStartBody(body),
      ),
    list: (guest) => manager.list(guest),
    stop: (guest, id) => manager.stop(guest, id),
    stopAll: (guest) => manager.stopAll(guest),
    engine: (guest) => manager.engineInfo(guest),
  };
}
