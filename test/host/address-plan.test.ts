// The guest address plan: everything of a guest's network from its index, and the allocation's skip rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateGuestNetwork, guestNetwork, MAX_GUESTS } from '../../src/host/address-plan.js';
import { hostLinkPresent } from '../../src/os/netns.js';

test('guestNetwork: links, addresses and netns derived from the index', () => {
  assert.deepEqual(guestNetwork(7, 'web1'), {
    index: 7, hostIf: 'hyh7', guestIf: 'hyg7', hostAddr: '10.213.7.1', guestAddr: '10.213.7.2', prefixLen: 24,
    netns: 'hylics-7-web1',
  });
  assert.equal(guestNetwork(250, 'a'.repeat(32)).netns, `hylics-250-${'a'.repeat(32)}`.slice(0, 48));
});

test('allocateGuestNetwork: the first index not used here, not a host link, and claimed', () => {
  const taken = new Set<number>();
  for (let i = 1; i <= MAX_GUESTS; i++) if (hostLinkPresent(`hyh${i}`)) taken.add(i);
  const free = Array.from({ length: MAX_GUESTS }, (_, k) => k + 1).filter((i) => !taken.has(i));
  const [a, b, c] = free;
  const asked: number[] = [];
  const n = allocateGuestNetwork('g', new Set([a!]), (i) => { asked.push(i); return i !== b; });
  assert.equal(n.index, c);
  assert.ok(!asked.includes(a!), 'an index this daemon uses is not claimed');
  assert.throws(() => allocateGuestNetwork('g', new Set(), () => false), { code: 'HYLICS_ERR_CONFLICT' });
});
