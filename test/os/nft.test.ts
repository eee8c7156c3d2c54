import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HylicsError } from '../../src/core/errors/index.js';
import { applyModuleRules, listModuleRules, listModuleTableGuests, moduleTableName, removeModuleRules, renderModuleTable } from '../../src/os/nft.js';

const isRoot = process.getuid?.() === 0;

test('rendering validates everything that reaches nft', () => {
  const ok = renderModuleTable('g-1', [{ guestAddr: '10.1.2.3', port: 80, toAddr: '10.1.2.1', toPort: 40000 }]);
  assert.match(ok, /table ip hylics_mod_g_1 \{/);
  assert.match(ok, /ip daddr 10\.1\.2\.3 tcp dport 80 dnat to 10\.1\.2\.1:40000/);
  const bad = (f: () => unknown, code: string): void =>
    assert.throws(f, (e: unknown) => e instanceof HylicsError && e.code === code);
  bad(() => renderModuleTable('g', [{ guestAddr: '10.0.0.1; flush ruleset', port: 80, toAddr: '10.0.0.2', toPort: 1 }]), 'HYLICS_ERR_INVALID_ARGUMENT');
  bad(() => renderModuleTable('g', [{ guestAddr: '10.0.0.1', port: 0, toAddr: '10.0.0.2', toPort: 1 }]), 'HYLICS_ERR_INVALID_ARGUMENT');
  bad(() => renderModuleTable('g', [{ guestAddr: '10.0.0.1', port: 80, toAddr: '10.0.0.2', toPort: 70000 }]), 'HYLICS_ERR_INVALID_ARGUMENT');
  bad(() => moduleTableName('G; flush ruleset'), 'HYLICS_ERR_INVALID_NAME');
});

test('apply replaces the guest table atomically; remove deletes it', { skip: isRoot ? false : 'needs root (nftables)' }, async (t) => {
  const guest = `nt${process.pid}`;
  t.after(() => removeModuleRules(guest));
  await applyModuleRules(guest, [{ guestAddr: '10.9.9.2', port: 80, toAddr: '10.9.9.1', toPort: 41000 }, { guestAddr: '10.9.9.2', port: 443, toAddr: '10.9.9.1', toPort: 41001 }]);
  assert.ok((await listModuleTableGuests()).includes(guest));
  let listed = await listModuleRules(guest);
  assert.match(listed, /tcp dport 80 dnat to 10\.9\.9\.1:41000/);
  assert.match(listed, /tcp dport 443 dnat to 10\.9\.9\.1:41001/);
  assert.equal((listed.match(/dnat to/g) ?? []).length, 4, 'prerouting + output for each');
  await applyModuleRules(guest, [{ guestAddr: '10.9.9.2', port: 443, toAddr: '10.9.9.1', toPort: 41002 }]);
  listed = await listModuleRules(guest);
  assert.doesNotMatch(listed, /dport 80 /);
  assert.match(listed, /dport 443 dnat to 10\.9\.9\.1:41002/);
  await applyModuleRules(guest, []);
  assert.equal(await listModuleRules(guest), '');
  await removeModuleRules(guest); // idempotent
});

test('two daemons (tags) with a guest of the same name have separate tables (#12 item 7)', { skip: isRoot ? false : 'needs root (nftables)' }, async (t) => {
  const guest = `nd${process.pid}`;
  const [a, b] = [`a${process.pid}`, `b${process.pid}`];
  assert.notEqual(moduleTableName(guest, a), moduleTableName(guest, b));
  assert.throws(() => moduleTableName(guest, 'A;x'), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_INVALID_ARGUMENT');
  t.after(async () => { await removeModuleRules(guest, a); await removeModuleRules(guest, b); });
  await applyModuleRules(guest, [{ guestAddr: '10.9.8.2', port: 80, toAddr: '10.9.8.1', toPort: 41000 }], a);
  await applyModuleRules(guest, [{ guestAddr: '10.9.7.2', port: 80, toAddr: '10.9.7.1', toPort: 42000 }], b);
  // b's apply did not replace a's rules
  assert.match(await listModuleRules(guest, a), /ip daddr 10\.9\.8\.2 tcp dport 80 dnat to 10\.9\.8\.1:41000/);
  assert.deepEqual(await listModuleTableGuests(a), [guest]);
  await removeModuleRules(guest, b);
  assert.match(await listModuleRules(guest, a), /dnat to 10\.9\.8\.1:41000/, 'removing b\'s table left a\'s');
  assert.equal(await listModuleRules(guest, b), '');
});
