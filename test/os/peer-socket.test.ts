// The descriptor copy's taking and checks (src/os/peer-socket.ts, native peerPidfd / takePeerSocket) against a real
// process in a real network namespace: it connects to our Unix socket (SO_PEERPIDFD names it), holds a TCP
// connection over its loopback, and we take its descriptors. Accepted only in its own netns and only when
// non-blocking; refused (and nothing left open here) in another netns, blocking, or a number it does not have.
// The hostile cases a guest app can reach end to end are in test/host/socket-fdcopy.test.ts.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { closeSync, openSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HylicsError } from '../../src/core/errors/index.js';
import { run, runRaw } from '../../src/os/exec.js';
import { tcpRepairAvailable } from '../../src/os/tcp-repair.js';
import { closePeerSocket, closePidfd, netnsId, peerPidfd, streamFd, takePeerSocket } from '../../src/os/peer-socket.js';
import { sendDrainFreeze } from '../../src/os/tcp-repair.js';
import { waitUntil } from '../helpers/proc.js';

const [maj, min] = release().split('.').map(Number);
const skip = process.getuid?.() !== 0 ? 'needs root (a network namespace, pidfd_getfd of another process)'
  : !(maj! > 6 || (maj === 6 && min! >= 5)) ? 'needs Linux 6.5+ (SO_PEERPIDFD)'
  : !tcpRepairAvailable().ok ? 'needs the native addon' : false;

/** Our Unix socket in `dir`, and `argv` + its path spawned (the app connects to it): the app's connection here. */
type App = ChildProcessByStdio<Writable, Readable, null>;
async function peerApp(t: TestContext, dir: string, argv: string[]): Promise<{ conn: Promise<Socket>; child: App }> {
  const path = join(dir, 'u.sock');
  let accepted: (s: Socket) => void = () => undefined;
  const conn = new Promise<Socket>((r) => { accepted = r; });
  const srv = createServer((s) => accepted(s));
  await new Promise<void>((r) => srv.listen(path, r));
  t.after(() => srv.close());
  const child = spawn(argv[0]!, [...argv.slice(1), path], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => { child.stdin.end(); child.kill(); });
  return { conn, child };
}

// in the namespace: a TCP connection over lo (the connecting end non-blocking, the accepted end blocking), then our
// Unix socket; prints the two fd numbers and waits for stdin to close
const CHILD = `
import os, socket, sys
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
c = socket.create_connection(l.getsockname()); a, _ = l.accept()
c.setblocking(False)
u = socket.socket(socket.AF_UNIX); u.connect(sys.argv[1])
print(c.fileno(), a.fileno(), flush=True)
sys.stdin.read()
`;

test('takePeerSocket: own netns and non-blocking only; another netns, blocking, no such fd refused', { skip }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-peersock-'));
  const ns = `hylics-ps-${process.pid}`;
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  t.after(async () => { await runRaw('ip', ['netns', 'delete', ns]); await rm(dir, { recursive: true, force: true }); });
  const { conn, child } = await peerApp(t, dir, ['ip', 'netns', 'exec', ns, 'python3', '-c', CHILD]);
  const line = await new Promise<string>((r) => child.stdout.once('data', (d: Buffer) => r(d.toString())));
  const [nonBlocking, blocking] = line.trim().split(' ').map(Number) as [number, number];
  const s = await conn;
  const pidfd = peerPidfd(streamFd(s)!);
  t.after(() => closePidfd(pidfd));
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const before = fds();
  const refused = (fd: number, ns2: ReturnType<typeof netnsId>, why: string): void => {
    assert.throws(() => takePeerSocket(pidfd, fd, ns2), (e: unknown) =>
      e instanceof HylicsError && e.code === 'HYLICS_ERR_OFFLOAD_FD_REFUSED' && e.details?.why === why, why);
  };
  const theirs = netnsId(`/run/netns/${ns}`);
  const ours = netnsId('/proc/self/ns/net');
  // its own netns: the duplicate, with its addresses
  const got = takePeerSocket(pidfd, nonBlocking, theirs);
  assert.equal(got.localAddr, '127.0.0.1');
  assert.equal(got.remoteAddr, '127.0.0.1');
  closePeerSocket(got.fd); // on a thread of its own: counted closed below once it is
  // the host's netns (any other): refused
  refused(nonBlocking, ours, 'other-netns');
  // a blocking socket: refused (its file flags are the app's: never changed)
  refused(blocking, theirs, 'blocking');
  refused(100_000, theirs, 'no-such-fd');
  await waitUntil('nothing left open here', () => fds() === before, 10_000, 20);
  // a namespace that is gone (a guest being removed): a code the guest library knows means nothing was sent
  assert.throws(() => netnsId(`/run/netns/${ns}-gone`), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE');
  s.destroy();
});

// the app: a TCP connection whose client never reads (its accepted end non-blocking, as takePeerSocket wants), our
// Unix socket; prints the accepted end's fd, and on "block" clears its O_NONBLOCK every millisecond from then on
// (as an app may at any moment: whatever the host sets back, the flag is blocking again when its sends go on)
const HOSTILE = `
import socket, sys, threading, time
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096); c.connect(l.getsockname())
a, _ = l.accept(); a.setblocking(False)
u = socket.socket(socket.AF_UNIX); u.connect(sys.argv[1])
print(a.fileno(), flush=True)
sys.stdin.readline()
def clear():
  while True: a.setblocking(True); time.sleep(0.001)
threading.Thread(target=clear, daemon=True).start()
print('blocking', flush=True)
sys.stdin.read()
`;

test('a shared socket its app makes blocking mid-send never blocks the addon\'s I/O thread', { skip, timeout: 90_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-peersock-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { conn, child } = await peerApp(t, dir, ['python3', '-c', HOSTILE]);
  const lines = (async function* () { let b = ''; for await (const d of child.stdout) { b += String(d); let i; while ((i = b.indexOf('\n')) >= 0) { yield b.slice(0, i); b = b.slice(i + 1); } } })();
  const fd = Number((await lines.next()).value);
  const s = await conn;
  t.after(() => s.destroy());
  const pidfd = peerPidfd(streamFd(s)!);
  t.after(() => closePidfd(pidfd));
  const got = takePeerSocket(pidfd, fd, netnsId('/proc/self/ns/net'));
  child.stdin.write('block\n');
  assert.equal((await lines.next()).value, 'blocking');
  const file = join(dir, 'f');
  writeFileSync(file, '');
  truncateSync(file, 64 * 1024 * 1024);
  const ffd = openSync(file, 'r');
  t.after(() => closeSync(ffd));
  const order: string[] = [];
  // a client that reads nothing and a socket its app made blocking: a sendfile here would sleep in the kernel
  const stuck = sendDrainFreeze(got.fd, ffd, 0, 64 * 1024 * 1024, { stallMs: 3000, sharedOut: true })
    .then((r) => `sent ${r.bytes}`, (e: HylicsError) => e.code)
    .then((v) => { order.push(`shared: ${v}`); closePeerSocket(got.fd); });
  // meanwhile another transfer on the same I/O thread, to a client that reads
  const sink = createServer((c) => c.resume());
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  t.after(() => sink.close());
  const other = connect((sink.address() as AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => other.once('connect', r));
  t.after(() => other.destroy());
  const r = await sendDrainFreeze(streamFd(other)!, ffd, 0, 1024 * 1024, { stallMs: 30_000 });
  order.push('other');
  assert.equal(r.bytes, 1024 * 1024);
  await stuck;
  assert.equal(order[0], 'other', order.join(', '));
  assert.match(order[1]!, /^shared: HYLICS_ERR_/, 'the shared send failed at its stall limit, not blocked');
});
