// The real agent on a real virtio-serial port: one microVM (TCG is fine) whose agent runs with --channel-port,
// a ChannelServer in connect mode on QEMU's chardev socket, health + exec through it, then a "daemon restart"
// with stale half-frame bytes left in the port: the agent must resync on the marker and answer again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { MicrovmDriver } from '../../src/host/drivers/microvm.js';
import type { DriverContext, DriverState } from '../../src/host/drivers/types.js';
import { run } from '../../src/os/image/run.js';
import { ChannelServer } from '../../src/host/channel/index.js';
import { connectUnix } from '../../src/os/channel/index.js';

const skip = process.getuid?.() !== 0 ? 'needs root (tap, tmpfs, virtiofsd)'
  : !existsSync('/usr/lib/qemu/virtiofsd') ? 'needs qemu-system-x86 (virtiofsd)'
  : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun' : false;

const MiB = 1024 * 1024;

test('agent on a virtio-serial port: health, exec, resync after the host side restarts with stale bytes', { skip, timeout: 600_000 }, async (t) => {
  const stateDir = `/tmp/hychan${process.pid}`;
  const idx = 240 + (process.pid % 10);
  const name = `vc${process.pid % 100000}`;
  const dir = join(stateDir, 'guests', name);
  const ctx: DriverContext = {
    spec: { name, driver: 'microvm', shareSizeBytes: 32 * MiB, cpus: 1, memoryBytes: 768 * MiB },
    paths: { dir, share: join(dir, 'share'), run: join(dir, 'run'), logs: join(dir, 'logs') },
    network: { index: idx, hostIf: `hyt${idx}`, guestIf: `hyu${idx}`, hostAddr: `10.214.${idx}.1`, guestAddr: `10.214.${idx}.2`, prefixLen: 24, netns: `hymv-${idx}` },
    stateDir,
    log: pino({ level: 'silent' }),
  };
  const driver = new MicrovmDriver({ stateDir, log: ctx.log, diskBytes: 128 * MiB });
  const server = new ChannelServer({ reconnectMinMs: 100, reconnectMaxMs: 1000 });
  let state: DriverState | undefined;
  t.after(async () => {
    await server.close();
    if (state) await driver.stop(ctx, state, 5000).catch(() => undefined);
    await driver.cleanup(ctx, state).catch(() => undefined);
    await run('umount', ['-l', ctx.paths.share], { allowFail: true });
    await rm(stateDir, { recursive: true, force: true });
  });
  await mkdir(ctx.paths.share, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=32m', `hylics-test-${name}`, ctx.paths.share]);
  await driver.preflight();
  state = await driver.start(ctx);
  const ep = driver.channel(ctx, state);
  assert.equal(ep.mode, 'connect');
  await server.addGuest(name, ep);
  await server.waitConnected(name, 400_000);
  const h = await server.request(name, 'health', {}, { timeoutMs: 60_000 });
  assert.equal(h.name, name);
  const r = await server.request(name, 'exec', { argv: ['sh', '-c', 'echo in-vm; exit 4'], timeoutMs: 60_000 }, { timeoutMs: 90_000 });
  assert.equal(r.exitCode, 4);
  assert.equal(Buffer.from(r.stdout, 'base64').toString(), 'in-vm\n');

  // daemon restart: the host end goes away, something leaves half a frame in the port, a new host end connects
  await server.removeGuest(name);
  const raw = await connectUnix(ep.path);
  raw.write(Buffer.from([0, 0, 0, 200, 0, 0, 0, 9, 3, 0, 0x7b, 0x22])); // header of a 200-byte request + 2 bytes
  await sleep(1000);
  raw.destroy();
  await server.addGuest(name, ep);
  await server.waitConnected(name, 120_000);
  const h2 = await server.request(name, 'health', {}, { timeoutMs: 60_000 });
  assert.equal(h2.pid, h.pid, 'the same agent process, resynchronised');
});
