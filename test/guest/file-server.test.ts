// The example file server (src/guest/file-server.ts) on a tiered share, without an agent: a name missing from the
// share is served from where the guest's tiered store keeps it (the disk tier), by the guest itself (the host sends
// only from the share); a name in neither tier is 404. Real HTTP over a real socket, real directories.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFileServer } from '../../src/guest/file-server.js';

type Reply = { status: number; body: Buffer };
function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', rej);
    req.end();
  });
}

test('file server: a file the tiered store moved to the disk tier is served from there by the guest; missing in both is 404', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-fileserver-'));
  const share = join(dir, 'share');
  const disk = join(dir, 'disk');
  await mkdir(join(disk, 'v'), { recursive: true });
  await mkdir(share);
  const saved = { agent: process.env.HYLICS_AGENT_SOCKET, disk: process.env.HYLICS_DISK_TIER };
  // no agent here: the lookup is the tier library's own (no counting, no promotion), and the host is unreachable
  process.env.HYLICS_AGENT_SOCKET = join(dir, 'no-agent.sock');
  process.env.HYLICS_DISK_TIER = disk;
  const inShare = randomBytes(5000);
  const onDisk = randomBytes(70_000);
  await writeFile(join(share, 'hot.bin'), inShare);
  await writeFile(join(disk, 'v', 'cold.bin'), onDisk);
  const srv = await startFileServer({ root: share, share, port: 0, host: '127.0.0.1', offload: 'socket' });
  t.after(async () => {
    await srv.close();
    process.env.HYLICS_AGENT_SOCKET = saved.agent;
    process.env.HYLICS_DISK_TIER = saved.disk;
    if (saved.agent === undefined) delete process.env.HYLICS_AGENT_SOCKET;
    if (saved.disk === undefined) delete process.env.HYLICS_DISK_TIER;
    await rm(dir, { recursive: true, force: true });
  });
  const port = (srv.server.address() as AddressInfo).port;

  const cold = await get(port, '/v/cold.bin');
  assert.equal(cold.status, 200);
  assert.ok(cold.body.equals(onDisk), 'the disk-tier file, byte-exact');
  // sent by the guest without trying the host (which reads only the share): no fallback counted for it (counted once
  // the send's promise settled, which can be after the client has the last byte)
  for (let i = 0; i < 100 && srv.stats.byGuest === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual({ byGuest: srv.stats.byGuest, fallbacks: srv.stats.fallbacks }, { byGuest: 1, fallbacks: {} });

  const part = await get(port, '/v/cold.bin', { Range: 'bytes=100-199' });
  assert.equal(part.status, 206);
  assert.ok(part.body.equals(onDisk.subarray(100, 200)), 'a range of the disk-tier file');

  // a file in the share is offered to the host first (unreachable here: sent by the guest, the fallback counted)
  const hot = await get(port, '/hot.bin');
  assert.equal(hot.status, 200);
  assert.ok(hot.body.equals(inShare));
  for (let i = 0; i < 100 && srv.stats.byGuest < 3; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(srv.stats.fallbacks['host-unreachable'], 1, JSON.stringify(srv.stats));

  assert.equal((await get(port, '/v/none.bin')).status, 404, 'in neither tier');
  assert.equal((await get(port, '/v')).status, 404, 'a directory');
});
