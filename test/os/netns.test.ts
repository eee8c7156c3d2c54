import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { addressesOf, createNetns, createVeth, deleteLink, deleteNetns, enableIpForward, linkExists, listNetns, netnsExists } from '../../src/os/netns.js';
import { run, runRaw } from '../../src/os/exec.js';
import { isHylicsError } from '../../src/core/errors/index.js';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false;

test('netns + veth: addresses, routes, traffic both ways, delete', { skip }, async (t) => {
  const tag = `${process.pid % 100000}`;
  const ns = `hylics-nstest-${tag}`;
  const hostIf = `hyoh${tag}`;
  const guestIf = `hyog${tag}`;
  const oct = (process.pid % 200) + 20;
  const hostAddr = `10.252.${oct}.1`;
  const guestAddr = `10.252.${oct}.2`;
  t.after(async () => {
    await deleteLink(hostIf).catch(() => undefined);
    await deleteNetns(ns).catch(() => undefined);
  });
  await createNetns(ns);
  assert.ok(await netnsExists(ns));
  assert.ok((await listNetns()).includes(ns));
  await createVeth({ netns: ns, hostIf, guestIf, hostAddr, guestAddr, prefixLen: 30 });
  await enableIpForward();
  assert.ok(await linkExists(hostIf));
  assert.ok(await linkExists(guestIf, ns));
  assert.equal(await linkExists(guestIf), false); // the peer lives only in the netns
  assert.deepEqual(await addressesOf(hostIf), [`${hostAddr}/30`]);
  assert.deepEqual(await addressesOf(guestIf, ns), [`${guestAddr}/30`]);
  assert.match((await run('ip', ['-n', ns, 'route', 'show', 'default'])).stdout, new RegExp(`via ${hostAddr}`));
  // a host listener reached from inside the netns (through the veth, via the host address)
  const srv = createServer((s) => s.end('pong'));
  await new Promise<void>((r) => srv.listen(0, hostAddr, r));
  t.after(() => new Promise<void>((r) => srv.close(() => r())));
  const port = (srv.address() as { port: number }).port;
  const r = await run('ip', ['netns', 'exec', ns, process.execPath, '-e',
    `require('net').connect(${port}, '${hostAddr}').on('data', (d) => process.stdout.write(d))`], { timeoutMs: 10000 });
  assert.equal(r.stdout, 'pong');
  // duplicate names are refused by the kernel with a clear error
  await assert.rejects(createNetns(ns), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_OS_COMMAND_FAILED');
  await assert.rejects(createNetns('bad name'), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_INVALID_ARGUMENT');
  await deleteLink(hostIf);
  assert.equal(await linkExists(hostIf), false);
  assert.equal(await linkExists(guestIf, ns), false); // a veth pair dies together
  await deleteNetns(ns);
  assert.equal(await netnsExists(ns), false);
  await deleteNetns(ns); // idempotent
  assert.equal((await runRaw('ip', ['netns', 'exec', ns, 'true'])).code !== 0, true);
});
