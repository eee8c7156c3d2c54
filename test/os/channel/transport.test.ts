import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, writeFileSync as wf } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findVirtioPort, openVirtioPort, listenUnix, connectUnix, closeUnixServer } from '../../../src/os/channel/index.js';
import { HylicsError } from '../../../src/core/errors/index.js';

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), `hylics-transport-${process.pid}-`));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('findVirtioPort picks the port by its name file; a missing name is NO_PORT', async (t) => {
  const d = tmp(t);
  const sys = join(d, 'sys');
  for (const [port, name] of [['vport0p0', 'org.qemu.guest_agent.0'], ['vport0p1', 'org.hylics.channel.0']]) {
    mkdirSync(join(sys, port!), { recursive: true });
    writeFileSync(join(sys, port!, 'name'), `${name}\n`);
  }
  assert.equal(await findVirtioPort('org.hylics.channel.0', { sysRoot: sys, devRoot: '/dev' }), '/dev/vport0p1');
  await assert.rejects(findVirtioPort('org.hylics.channel.9', { sysRoot: sys }), (e: HylicsError) => e.code === 'HYLICS_ERR_CHANNEL_NO_PORT');
  await assert.rejects(findVirtioPort('x', { sysRoot: join(d, 'none') }), (e: HylicsError) => e.code === 'HYLICS_ERR_CHANNEL_NO_PORT');
});

test('the character-device stream reads and writes one fd (a FIFO opened read-write loops back)', async (t) => {
  // A real virtio-serial port needs a VM (the microVM tests cover it); a FIFO is a character-like fd with the
  // same blocking read(2)/write(2) behaviour, so it exercises the Duplex here.
  const d = tmp(t);
  const sys = join(d, 'sys');
  mkdirSync(join(sys, 'vport1p1'), { recursive: true });
  wf(join(sys, 'vport1p1', 'name'), 'org.hylics.channel.0\n');
  execFileSync('mkfifo', [join(d, 'vport1p1')]);
  const port = await openVirtioPort('org.hylics.channel.0', { sysRoot: sys, devRoot: d });
  t.after(() => port.destroy());
  const got: Buffer[] = [];
  const msg = Buffer.alloc(200_000, 0x61);
  const done = new Promise<void>((resolve) => port.on('data', (c: Buffer) => { got.push(c); if (Buffer.concat(got).length >= msg.length) resolve(); }));
  port.write(msg);
  await done;
  assert.ok(Buffer.concat(got).equals(msg));
  // write a byte so the blocked thread-pool read returns after destroy instead of lingering
  port.destroy();
  writeFileSync(join(d, 'vport1p1'), 'x');
});

test('listenUnix replaces a stale socket but never a regular file', async (t) => {
  const d = tmp(t);
  const p = join(d, 'c.sock');
  const s1 = await listenUnix(p, (c) => c.end());
  await closeUnixServer(s1); // leaves the file behind, like a crashed daemon
  const s2 = await listenUnix(p, (c) => c.end());
  const c = await connectUnix(p);
  c.destroy();
  await closeUnixServer(s2, p);
  writeFileSync(join(d, 'f'), 'data');
  await assert.rejects(listenUnix(join(d, 'f'), () => {}), (e: HylicsError) => e.code === 'HYLICS_ERR_CONFLICT');
});
