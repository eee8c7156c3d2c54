import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateStore } from '../../src/host/state.js';

const rec = (name: string) => ({
  spec: { name, driver: 'sandbox' as const, shareSizeBytes: 1 << 20, cpus: 1, memoryBytes: 1 << 29 },
  network: { index: 1, hostIf: 'hyh1', guestIf: 'hyg1', hostAddr: '10.213.1.1', guestAddr: '10.213.1.2', prefixLen: 24, netns: `hylics-1-${name}` },
  createdAt: new Date(0).toISOString(),
  desired: 'running' as const,
});

test('the registry persists and reloads', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = new StateStore(dir);
  await a.load();
  await Promise.all([a.update((s) => { s.guests.x = rec('x'); }), a.update((s) => { s.guests.y = rec('y'); })]);
  const b = new StateStore(dir);
  const loaded = await b.load();
  assert.deepEqual(Object.keys(loaded.guests).sort(), ['x', 'y']);
  assert.equal(b.get('x')!.network.guestAddr, '10.213.1.2');
  assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
});

test('a corrupt state file is moved aside with a clear code', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'state.json'), '{ not json');
  await assert.rejects(new StateStore(dir).load(), { code: 'HYLICS_ERR_STATE_CORRUPT' });
  assert.ok((await readdir(dir)).some((f) => f.startsWith('state.json.corrupt-')));
});
