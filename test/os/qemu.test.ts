// QEMU adapter: the command line the driver boots with, QMP against a real QEMU (no guest: -machine none),
// the routed tap, and the O_DIRECT check that picks the disk's cache mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createTap, deleteTap, guestExec, guestMac, memoryMiB, qemuArgs, qmp, supportsDirectIo, tapExists, type QemuConfig } from '../../src/os/qemu.js';
import { run } from '../../src/os/image/run.js';
import { isHylicsError } from '../../src/core/errors/index.js';

const cfg: QemuConfig = {
  name: 'g1', accel: 'tcg', vcpus: 2, memoryBytes: 700 * 1024 * 1024 + 1, kernel: '/k', initrd: '/i', append: 'console=ttyS0 hylics.name=g1',
  consoleLog: '/l/console.log', qmpSocket: '/r/qmp.sock', channelSocket: '/r/channel.sock', shellSocket: '/r/shell.sock',
  shareSocket: '/r/fs-share.sock', hostRootSocket: '/r/fs-root.sock',
  disk: { path: '/d/disk.raw', format: 'raw', direct: true }, tap: { ifname: 'hyh7', mac: guestMac(7), vhost: false },
};

test('qemuArgs: shared memfd memory, virtio-fs, virtio-serial ports, disk cache=none, routed tap', () => {
  const a = qemuArgs(cfg).join(' ');
  assert.match(a, /-object memory-backend-memfd,id=mem,size=701M,share=on -numa node,memdev=mem/);
  assert.match(a, /-m 701M/);
  assert.match(a, /-accel tcg,thread=multi -cpu max -smp 2/);
  assert.match(a, /-chardev socket,id=chan0,path=\/r\/channel\.sock,server=on,wait=off -device virtserialport,bus=vser0\.0,chardev=chan0,name=org\.hylics\.channel\.0/);
  assert.match(a, /vhost-user-fs-pci,chardev=fs0,tag=hylics/);
  assert.match(a, /vhost-user-fs-pci,chardev=fs1,tag=hostroot/);
  assert.match(a, /-drive file=\/d\/disk\.raw,format=raw,if=none,id=disk0,cache=none,aio=native/);
  assert.match(a, /-netdev tap,id=net0,ifname=hyh7,script=no,downscript=no -device virtio-net-pci,netdev=net0,mac=52:54:00:48:00:07/);
  assert.match(a, /-chardev file,id=con0,path=\/l\/console\.log,append=on -serial chardev:con0/);
  assert.ok(!a.includes('vhost-vsock'));
  const kvm = qemuArgs({ ...cfg, accel: 'kvm', vsockCid: 1007, disk: { path: '/d', format: 'raw', direct: false } }).join(' ');
  assert.match(kvm, /-accel kvm -cpu host/);
  assert.match(kvm, /vhost-vsock-pci,guest-cid=1007/);
  assert.match(kvm, /cache=writeback,aio=threads/);
  assert.equal(memoryMiB(1), 64);
  assert.equal(guestMac(0x1234), '52:54:00:48:12:34');
});

test('supportsDirectIo: the host disk takes O_DIRECT (tmpfs does only from Linux 6.6 on, so it is probed, not assumed)', async (t) => {
  const dir = await mkdtemp(join('/var/tmp', 'hylics-dio-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'f'), 'x');
  assert.equal(supportsDirectIo(join(dir, 'f')), true);
  assert.equal(supportsDirectIo(join(dir, 'missing')), false);
});

test('qmp talks to a real QEMU monitor', { skip: existsSync('/usr/bin/qemu-system-x86_64') ? false : 'needs qemu-system-x86' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-qmp-'));
  const sock = join(dir, 'qmp.sock');
  const child = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-chardev', `socket,id=q,path=${sock},server=on,wait=off`, '-mon', 'chardev=q,mode=control'], { stdio: 'ignore' });
  const exited = new Promise((r) => child.on('exit', r));
  t.after(async () => { if (child.exitCode === null) child.kill('SIGKILL'); await rm(dir, { recursive: true, force: true }); });
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 25));
  const status = (await qmp(sock, 'query-status')) as { status: string };
  assert.equal(typeof status.status, 'string');
  await assert.rejects(qmp(sock, 'no-such-command'), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_MICROVM_QMP');
  await qmp(sock, 'quit');
  await exited;
});

test('createTap: a routed tap with the host address /32 and a /32 route to the guest', { skip: process.getuid?.() !== 0 ? 'needs root' : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun' : false }, async (t) => {
  const ifname = `hyq${process.pid % 100000}`;
  t.after(() => deleteTap(ifname));
  await createTap(ifname, '10.215.7.1', '10.215.7.2');
  assert.ok(await tapExists(ifname));
  const addr = await run('ip', ['-o', '-4', 'addr', 'show', 'dev', ifname]);
  assert.match(addr.stdout, /inet 10\.215\.7\.1\/32/);
  const route = await run('ip', ['route', 'show', '10.215.7.2']);
  assert.match(route.stdout, new RegExp(`10\\.215\\.7\\.2 dev ${ifname}`));
  assert.equal((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim(), '1');
  await deleteTap(ifname);
  assert.equal(await tapExists(ifname), false);
  await deleteTap(ifname); // idempotent
});

test('guestExec: calls on one shell socket run one at a time, each with its own output and exit status', async (t) => {
  // the guest's admin shell as QEMU's chardev gives it: a shell on the other end of each session
  const dir = await mkdtemp(join(tmpdir(), 'hylics-shell-'));
  const path = join(dir, 'shell.sock');
  const log = join(dir, 'log');
  const server = createServer((c) => {
    const sh = spawn('sh', [], { stdio: ['pipe', 'pipe', 'inherit'] });
    c.pipe(sh.stdin);
    sh.stdout.pipe(c);
    c.on('close', () => sh.kill());
    c.on('error', () => undefined);
    sh.stdin.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.after(async () => { server.close(); await rm(dir, { recursive: true, force: true }); });
  const runs = await Promise.all([0, 1, 2, 3].map((i) =>
    guestExec(path, `echo begin >> ${log}; sleep 0.05; echo end >> ${log}; echo run${i}; (exit ${i})`, 20_000)));
  assert.deepEqual(runs.map((r) => [r.stdout.trim(), r.code]), [['run0', 0], ['run1', 1], ['run2', 2], ['run3', 3]]);
  assert.equal((await readFile(log, 'utf8')).trim().replace(/\n/g, ' '), 'begin end begin end begin end begin end', 'never two commands at once');
});
