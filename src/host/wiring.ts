// Builds the daemon's real backends: shares (tmpfs), guest drivers (sandbox, microvm), the control-channel server
// and the offload module manager. Kept apart from daemon.ts so the daemon logic reads without the plumbing.
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { ShareManager } from './share-manager.js';
import { SandboxDriver } from './drivers/sandbox.js';
import { MicrovmDriver } from './drivers/microvm.js';
import { renderLibvirtXml } from './libvirt.js';
import { ModuleManager, moduleBackend } from './modules/index.js';
import { createChannelBackend } from './channel-backend.js';
import type { DaemonOptions } from './daemon.js';

export type Backends = Omit<DaemonOptions, 'stateDir' | 'log'> & { close?: () => Promise<void> };

export async function wireBackends(stateDir: string, log: Logger): Promise<Backends> {
  const registry = new Registry();
  const shares = new ShareManager({ stateDir, log: log.child({ component: 'shares' }) });
  const channels = createChannelBackend(log.child({ component: 'channel' }));
  channels.setShareInfo((guest) => shares.usage(guest));
  const modules = new ModuleManager({ registry, log: (msg) => log.info({ component: 'modules' }, msg) });
  // Not modules.cleanupStale(): module tables are named by guest, and it would also remove the live rules of
  // another daemon on this host. A restarted daemon's stale table is replaced whole by the next module start.
  // Module events (requests served, bytes, errors) go back to the guest that owns the module.
  modules.on('event', (ev) => {
    if (channels.isConnected(ev.guest)) channels.notify(ev.guest, 'module.event', ev);
  });
  const microvm = new MicrovmDriver({ stateDir, log: log.child({ component: 'microvm' }), onProgress: (msg) => log.info({ component: 'microvm' }, msg) });
  return {
    registry,
    shares,
    channels,
    drivers: { sandbox: new SandboxDriver(), microvm },
    modules: moduleBackend(modules),
    libvirtXml: (ctx, state) => renderLibvirtXml(ctx, state),
    close: () => modules.close(),
  };
}
