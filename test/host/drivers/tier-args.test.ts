// Both drivers that start the guest agent pass the guest's tier settings (GuestSpec.tier) as the agent's flags, and
// the agent's own parser (src/guest/tier/options.ts) reads back what the host set; without settings the agent
// keeps its defaults. libvirt starts no agent and has no disk-tier rule (tier settings refused at create).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { agentCommand, SandboxDriver } from '../../../src/host/drivers/sandbox.js';
import { defaultAgentArgv, MicrovmDriver } from '../../../src/host/drivers/microvm.js';
import { LibvirtDriver } from '../../../src/host/drivers/libvirt.js';
import { parseTierOptions, TIER_ARGS } from '../../../src/guest/tier/options.js';
import type { DriverContext } from '../../../src/host/drivers/types.js';
import type { TierSettings } from '../../../src/core/tier-settings.js';

/** The tier flags of an agent argv, as the agent parses them. */
function agentTier(argv: string[]): ReturnType<typeof parseTierOptions> {
  const i = argv.findIndex((a) => a.startsWith('--'));
  const { values } = parseArgs({ args: argv.slice(i), options: { ...TIER_ARGS, name: { type: 'string' } }, strict: false });
  return parseTierOptions(values as Parameters<typeof parseTierOptions>[0]);
}

const tier: TierSettings = { idleMs: 2000, promote: 'off', diskDir: '/var/lib/hylics-tier' };
const ctx = (t?: TierSettings): DriverContext => ({
  spec: { name: 'g1', driver: 'sandbox', shareSizeBytes: 1, cpus: 1, memoryBytes: 1, ...(t ? { tier: t } : {}) },
  network: { index: 1 } as DriverContext['network'],
} as DriverContext);

test('sandbox: the agent gets the guest\'s tier settings, or its defaults', () => {
  assert.deepEqual(agentTier(agentCommand(ctx(tier)))?.store, { diskDir: '/var/lib/hylics-tier', idleMs: 2000, promote: 'off', headroomBytes: 1024 * 1024 });
  assert.equal(agentTier(agentCommand(ctx(tier)))?.sweepMs, 500);
  assert.deepEqual(agentTier(agentCommand(ctx()))?.store, { diskDir: '/var/lib/hylics-tier', idleMs: 60_000, promote: 'background', headroomBytes: 1024 * 1024 });
  assert.equal(agentTier(agentCommand(ctx({ idleMs: 0, promote: 'sync', diskDir: null }))), undefined, 'none: no store');
  assert.deepEqual(new SandboxDriver().diskTier, { driver: 'sandbox', defaultDir: '/var/lib/hylics-tier' });
});

test('microVM: the agent on the kernel command line gets them too, its disk tier beneath /mnt/disk', () => {
  const argv = defaultAgentArgv('g1', { idleMs: 90_000, promote: 'sync', diskDir: '/mnt/disk/t2' });
  assert.ok(argv, 'the agent entry point is built');
  assert.deepEqual(agentTier(argv)?.store, { diskDir: '/mnt/disk/t2', idleMs: 90_000, promote: 'sync', headroomBytes: 1024 * 1024 });
  assert.equal(agentTier(defaultAgentArgv('g1')!)?.store.diskDir, '/mnt/disk/hylics-tier');
  const d = new MicrovmDriver({ stateDir: '/nonexistent' });
  assert.deepEqual(d.diskTier, { driver: 'microvm', defaultDir: '/mnt/disk/hylics-tier', under: '/mnt/disk' });
  assert.equal((new LibvirtDriver() as { diskTier?: unknown }).diskTier, undefined);
});
