// Builds the daemon's real backends: shares (tmpfs), guest drivers (sandbox, microvm), the control-channel server
// and the offload module manager. Kept apart from daemon.ts so the daemon logic reads without the plumbing.
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { ShareManager } from './share-manager.js';
import { SandboxDriver, type SandboxIsolation } from './drivers/sandbox.js';
import { MicrovmDriver } from './drivers/microvm.js';
import { LibvirtDriver } from './drivers/libvirt.js';
import { renderLibvirtXml } from './libvirt.js';
import { ModuleManager, moduleBackend } from './modules/index.js';
import type { EngineSetting } from './modules/engine-api.js';
import { createChannelBackend } from './channel-backend.js';
import { SocketOffload, type SocketOffloadCopy } from './offload/socket.js';
import { TierUses } from './tier-uses.js';
import { applyGuard, guardInstalled, guardIntact } from '../os/nft-guard.js';
import type { DaemonOptions } from './daemon.js';

export type Backends = Omit<DaemonOptions, 'stateDir' | 'log'> & { close?: () => Promise<void> };

export interface WireOptions {
  /** Install and maintain the guest firewall (default true; off only with `hylics daemon --no-guest-firewall`). */
  guestFirewall?: boolean;
  /** Sandbox guests as crun containers (default) or namespaces only. */
  sandboxIsolation?: SandboxIsolation;
  /** The server behind the guests' module engines (daemon setting module-engine; default DEFAULT_ENGINE). */
  moduleEngine?: EngineSetting;
  /** How hylicsd takes sandbox guests' sockets for socket offload (setting socket-offload-copy; default auto). */
  socketOffloadCopy?: SocketOffloadCopy;
}

/** A short id of a daemon on this host: the first 8 hex digits of sha256(its resolved state dir). */
export function daemonTag(stateDir: string): string {
  return createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 8);
}

export async function wireBackends(stateDir: string, log: Logger, opts: WireOptions = {}): Promise<Backends> {
  const registry = new Registry();
  const shares = new ShareManager({ stateDir, log: log.child({ component: 'shares' }) });
  // HYLICS_CHANNEL_BUDGET=off removes the per-guest channel budget: for bench/channel-flood's "before" only
  const channels = createChannelBackend(log.child({ component: 'channel' }), { registry, ...(process.env.HYLICS_CHANNEL_BUDGET === 'off' ? { budget: false as const } : {}) });
  channels.setShareInfo((guest) => shares.usage(guest));
  // module nft tables and cgroups carry this daemon's id (its state dir's hash): another daemon's same-named guest
  // has its own; engine directories live in the state dir
  const modules = new ModuleManager({ registry, tableTag: daemonTag(stateDir), runDir: join(stateDir, 'run', 'modules'), ...(opts.moduleEngine ? { engine: opts.moduleEngine } : {}), log: (msg) => log.info({ component: 'modules' }, msg) });
  // What a previous daemon with this state dir left when it died: its engines died with it (modules are not
  // re-adopted), so its tables would steer the guests' ports to nothing; its cgroups and engine dirs are empty.
  const stale = await modules.cleanupStale().catch((e: unknown) => { log.warn({ component: 'modules', err: (e as Error).message }, 'removing stale module state failed'); return undefined; });
  if (stale && stale.tables.length + stale.cgroups.length + stale.dirs.length > 0) log.info({ component: 'modules', ...stale }, 'removed module state a previous daemon left');
  // Module events (requests served, bytes, errors) go back to the guest that owns the module.
  modules.on('event', (ev) => {
    if (channels.isConnected(ev.guest)) channels.notify(ev.guest, 'module.event', ev);
  });
  const present = (): Promise<boolean> => guardInstalled().catch(() => false); // no nft: no table either
  const restore = async (links: Array<{ ifname: string; addr: string }>): Promise<boolean> => {
    if (await guardIntact(links)) return false;
    await applyGuard({ add: links });
    return true;
  };
  // HYLICS_OFFLOAD_SOCKET_MAX_HANDOFFS / _MAX_BYTES: per-guest handoffs and file bytes in flight
  // (docs/offload-socket.md)
  const envInt = (k: string): number | undefined => (/^\d+$/.test(process.env[k] ?? '') ? Number(process.env[k]) : undefined);
  const maxPerGuest = envInt('HYLICS_OFFLOAD_SOCKET_MAX_HANDOFFS');
  const maxBytesPerGuest = envInt('HYLICS_OFFLOAD_SOCKET_MAX_BYTES');
  // the files socket offload sends count as uses in the guest's tiered store (event tier.used)
  const tierUses = new TierUses(channels);
  const socketOffload = new SocketOffload({
    ...(opts.socketOffloadCopy ? { copy: opts.socketOffloadCopy } : {}),
    log: log.child({ component: 'offload' }),
    registry,
    onFileUse: (guest, path) => tierUses.note(guest, path),
    ...(maxPerGuest !== undefined ? { maxPerGuest } : {}),
    ...(maxBytesPerGuest !== undefined ? { maxBytesPerGuest } : {}),
    tableTag: daemonTag(stateDir), // steering tables carry this daemon's id, as module tables do
  });
  const microvm = new MicrovmDriver({ stateDir, log: log.child({ component: 'microvm' }), onProgress: (msg) => log.info({ component: 'microvm' }, msg) });
  return {
    registry,
    shares,
    channels,
    drivers: {
      sandbox: new SandboxDriver({ isolation: opts.sandboxIsolation ?? 'container' }),
      microvm,
      libvirt: new LibvirtDriver(),
    },
    modules: moduleBackend(modules),
    // Off (--no-guest-firewall), the daemon installs nothing, but when another daemon's table is there it still
    // keeps its own guests' pairs in it: the table is host-wide, and without them it would drop all their traffic.
    guard:
      opts.guestFirewall !== false
        ? {
            allow: (links) => applyGuard({ add: links }),
            forbid: (links) => applyGuard({ remove: links }),
            ensure: restore,
          }
        : {
            allow: async (links) => {
              if (links.length > 0 && (await present())) await applyGuard({ add: links });
            },
            forbid: async (links) => {
              if (await present()) await applyGuard({ remove: links });
            },
            // only repaired while another daemon's table is there (it would drop this daemon's guests otherwise)
            ensure: async (links) => links.length > 0 && (await present()) && restore(links),
          },
    libvirtXml: (ctx, state) => renderLibvirtXml(ctx, state),
    socketOffload,
    close: async () => {
      tierUses.close();
      await socketOffload.close();
      await modules.close();
    },
  };
}
