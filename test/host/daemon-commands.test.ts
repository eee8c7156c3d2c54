// The daemon's command table without root: one guest re-adopted from a state file, with small fake backends.
// Checks the lock rule (a command that changes a guest waits for the one running on it, whether it came from the
// HTTP API or the guest's channel) and that an unknown command is refused. The real lifecycle is tested end to
// end in daemon.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Daemon } from '../../src/host/daemon.js';
import type { ChannelBackend, ModuleBackend, ShareBackend } from '../../src/host/backends.js';
import type { GuestDriver } from '../../src/host/drivers/types.js';
import type { GuestRecord } from '../../src/host/state.js';
import { HylicsError } from '../../src/core/errors/index.js';
import { MiB } from '../../src/core/units.js';


function record(name: string): GuestRecord {
  return {
    spec: { name, driver: 'sandbox', shareSizeBytes: 16 * MiB, cpus: 1, memoryBytes: 64 * MiB },
    network: { index: 200, hostIf: 'hyh200', guestIf: 'hyg200', hostAddr: '10.213.200.1', guestAddr: '10.213.200.2', prefixLen: 24, netns: `hylics-200-${name}` },
    createdAt: new Date(0).toISOString(),
    desired: 'running',
    driverState: { pid: 1 },
  };
}

interface Harness {
  daemon: Daemon;
  events: string[];
  channelOps: Map<string, (guest: string, params: unknown) => Promise<unknown>>;
  /** Resolves when the driver's stop has begun (the guest's lock is held by guest.stop from then on). */
  stopEntered: Promise<void>;
  /** Lets the blocked driver stop finish. */
  releaseStop: () => void;
  cleanup: () => Promise<void>;
}

async function harness(): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-daemon-cmd-'));
  await writeFile(join(dir, 'state.json'), JSON.stringify({ version: 1, guests: { g1: record('g1') } }));
  const events: string[] = [];
  let releaseStop!: () => void;
  const stopGate = new Promise<void>((r) => { releaseStop = r; });
  let entered!: () => void;
  const stopEntered = new Promise<void>((r) => { entered = r; });
  const channelOps = new Map<string, (guest: string, params: unknown) => Promise<unknown>>();
  const shares: ShareBackend = {
    path: (n) => join(dir, 'shares', n),
    isMounted: async () => true,
    create: async () => undefined,
    resize: async () => undefined,
    usage: async () => ({ sizeBytes: 16 * MiB, usedBytes: 0, freeBytes: 16 * MiB, mounted: true }),
    destroy: async () => undefined,
    reconcile: async () => undefined,
  };
  const channels: ChannelBackend = {
    attach: async () => undefined,
    detach: async () => undefined,
    isConnected: () => false,
    waitConnected: async () => undefined,
    request: async () => ({}),
    onEvent: () => undefined,
    onConnection: () => undefined,
    handle: (op, fn) => { channelOps.set(op, fn); },
    close: async () => undefined,
  };
  const driver: GuestDriver = {
    kind: 'sandbox',
    preflight: async () => undefined,
    start: async () => ({ pid: 1 }),
    alive: async () => true,
    watch: () => () => undefined,
    stop: async () => { events.push('stop begins'); entered(); await stopGate; events.push('stop ends'); },
    cleanup: async () => undefined,
    channel: () => ({ mode: 'listen', path: join(dir, 'channel.sock') }),
    describe: () => ({}),
  };
  const modules: ModuleBackend = {
    start: async (g) => { events.push(`module.start ${g.spec.name}`); return { id: 'm1', kind: 'http', root: '.', port: 80, urls: [] }; },
    list: () => [],
    stop: async () => { events.push('module.stop'); },
    stopAll: async () => undefined,
  };
  const daemon = new Daemon({ stateDir: dir, log: pino({ level: 'silent' }), shares, channels, drivers: { sandbox: driver }, modules, registry: new Registry(), guardCheckMs: 0 });
  await daemon.start();
  return {
    daemon,
    events,
    channelOps,
    stopEntered,
    releaseStop,
    cleanup: async () => {
      await daemon.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Settled yet? (true after the promise resolved or rejected) */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => { done = true; }, () => { done = true; });
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return done;
}

test('module.start waits for a guest stop in progress, from the HTTP API and from the guest channel alike', async () => {
  const h = await harness();
  try {
    const stopping = h.daemon.execute({ op: 'guest.stop', name: 'g1' });
    await h.stopEntered;
    const viaApi = h.daemon.execute({ op: 'module.start', name: 'g1', body: { kind: 'http', root: '.', port: 8080 } });
    const viaChannel = h.channelOps.get('module.start')!('g1', { kind: 'http', root: '.', port: 8081 });
    const viaApiStop = h.daemon.execute({ op: 'module.stop', name: 'g1', id: 'm1' });
    assert.equal(await settled(viaApi), false, 'HTTP module.start ran while the guest was being stopped');
    assert.equal(await settled(viaChannel), false, 'channel module.start ran while the guest was being stopped');
    assert.equal(await settled(viaApiStop), false, 'HTTP module.stop ran while the guest was being stopped');
    assert.deepEqual(h.events, ['stop begins']);
    h.releaseStop();
    assert.equal((await stopping).status, 'stopped');
    // after the stop the guest is not running: both starts are refused, and nothing was started behind its back
    for (const p of [viaApi, viaChannel]) {
      await assert.rejects(p, (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_GUEST_NOT_RUNNING');
    }
    assert.deepEqual(await viaApiStop, { stopped: 'm1' });
    assert.deepEqual(h.events, ['stop begins', 'stop ends', 'module.stop']);
  } finally {
    h.releaseStop();
    await h.cleanup();
  }
});

test('a read-only command does not wait for the guest lock; an unknown command is refused', async () => {
  const h = await harness();
  try {
    const stopping = h.daemon.execute({ op: 'guest.stop', name: 'g1' });
    await h.stopEntered;
    const shown = h.daemon.execute({ op: 'guest.show', name: 'g1' });
    assert.equal(await settled(shown), true);
    assert.equal((await shown).name, 'g1');
    h.releaseStop();
    await stopping;
    // a caller outside the type system (JSON from somewhere) gets a stable code, not a crash
    await assert.rejects(h.daemon.execute({ op: 'guest.explode' } as never), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_INVALID_ARGUMENT');
  } finally {
    h.releaseStop();
    await h.cleanup();
  }
});
