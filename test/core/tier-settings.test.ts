// guest create's `tier` section: every bad value refused with HYLICS_ERR_TIER_INVALID_SETTING naming the setting,
// the driver's disk-tier rule applied, and the agent flags built from the resolved settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HylicsError } from '../../src/core/errors/index.js';
import { normalTierSettings, parseTierSettings, tierAgentArgs, type DiskTierRule } from '../../src/core/tier-settings.js';

const sandbox: DiskTierRule = { driver: 'sandbox', defaultDir: '/var/lib/hylics-tier' };
const microvm: DiskTierRule = { driver: 'microvm', defaultDir: '/mnt/disk/hylics-tier', under: '/mnt/disk' };

const refused = (fn: () => unknown, param: string): void => {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HylicsError, String(e));
    assert.equal(e.code, 'HYLICS_ERR_TIER_INVALID_SETTING');
    assert.equal((e.details as { param?: string }).param, param);
    return true;
  });
};

test('tier settings: defaults filled in, durations parsed, 0 = never', () => {
  assert.equal(parseTierSettings(undefined, sandbox), undefined);
  assert.deepEqual(parseTierSettings({}, sandbox), { idleMs: 60_000, promote: 'background', diskDir: '/var/lib/hylics-tier' });
  assert.deepEqual(parseTierSettings({ idle: '2s', promote: false }, sandbox), { idleMs: 2000, promote: 'off', diskDir: '/var/lib/hylics-tier' });
  // promote modes: background (default; true and "on" too), sync (the copy on the task's path), off (false too)
  for (const [v, want] of [[true, 'background'], ['on', 'background'], ['background', 'background'], ['sync', 'sync'], ['off', 'off'], [false, 'off']] as const) {
    assert.equal(parseTierSettings({ promote: v }, sandbox)?.promote, want, String(v));
  }
  // a record persisted before the modes holds a boolean: shown and passed on as the mode
  assert.equal(normalTierSettings({ idleMs: 1, promote: true as unknown as 'off', diskDir: null }).promote, 'background');
  assert.equal(normalTierSettings({ idleMs: 1, promote: false as unknown as 'sync', diskDir: null }).promote, 'off');
  assert.equal(parseTierSettings({ idle: '1.5m' }, sandbox)?.idleMs, 90_000);
  assert.equal(parseTierSettings({ idle: 750 }, sandbox)?.idleMs, 750);
  assert.equal(parseTierSettings({ idle: '0' }, sandbox)?.idleMs, 0);
  assert.equal(parseTierSettings({ diskDir: 'none' }, sandbox)?.diskDir, null);
  assert.equal(parseTierSettings({ diskDir: '/mnt/disk/t2' }, microvm)?.diskDir, '/mnt/disk/t2');
});

test('tier settings: bad values refused with the setting named', () => {
  for (const idle of ['-1s', 'soon', '1e3', 'NaN', '', '100ms', 499, -5, Number.NaN, Infinity, '8d', 1e12]) {
    refused(() => parseTierSettings({ idle }, sandbox), 'idle');
  }
  // a sandbox guest's disk tier is the host's <guest dir>/disk-tier mounted at its default path: only that or none
  refused(() => parseTierSettings({ diskDir: '/srv/tier' }, sandbox), 'diskDir');
  for (const promote of ['maybe', 'ON', '', 1]) refused(() => parseTierSettings({ promote: promote as 'on' }, sandbox), 'promote');
  // microVM: beneath its writable disk, plain absolute paths only
  for (const d of ['/srv/tier', '/mnt/disk', '/mnt/disk/../etc', '/mnt/disk/./x', 'mnt/disk/x', '/mnt/disk/a b', '/mnt/disk/x,y', '/mnt/disk//x', `/mnt/disk/${'a'.repeat(300)}`]) {
    refused(() => parseTierSettings({ diskDir: d }, microvm), 'diskDir');
  }
  // a driver that does not start the agent (libvirt) takes no tier settings
  refused(() => parseTierSettings({ idle: '2s' }, undefined), 'tier');
});

test('tier settings: the agent flags', () => {
  assert.deepEqual(tierAgentArgs(undefined, '/var/lib/hylics-tier'), ['--disk-tier', '/var/lib/hylics-tier']);
  assert.deepEqual(tierAgentArgs({ idleMs: 2000, promote: 'off', diskDir: '/var/lib/hylics-tier' }, '/x'), ['--disk-tier', '/var/lib/hylics-tier', '--tier-idle', '2000ms', '--tier-promote', 'off']);
  assert.deepEqual(tierAgentArgs({ idleMs: 2000, promote: 'sync', diskDir: '/d' }, '/x').slice(-1), ['sync']);
  assert.deepEqual(tierAgentArgs({ idleMs: 0, promote: 'background', diskDir: null }, '/x'), ['--disk-tier', 'none']);
});
