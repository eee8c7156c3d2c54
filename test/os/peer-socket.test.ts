// The descriptor copy's taking and checks (src/os/peer-socket.ts, native peerPidfd / takePeerSocket) against a real
// process in a real network namespace: it connects to our Unix socket (SO_PEERPIDFD names it), holds a TCP
// connection over its loopback, and we take its descriptors. Accepted only in its own netns and only when
// non-blocking; refused (and nothing left open here) in another netns, blocking, or a number it does not have.
// The hostile cases a guest app can reach end to end are in test/host/socket-fdcopy.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HylicsError } from '../../src/core/errors/index.js';
import { run, runRaw } from '../../src/os/exec.js';
import { tcpRepairAvailable } from '../../src/os/tcp-repair.js';
import { closePeerSocket, closePidfd, netnsId, peerPidfd, streamFd, takePeerSocket } from '../../src/os/peer-socket.js';

const [maj, min] = release().split('.').map(Number);
const skip = process.getuid?.() !== 0 ? 'needs root (a network namespace, pidfd_getfd of another process)'
  : !(maj! > 6 || (maj === 6 && min! >= 5)) ? 'needs Linux 6.5+ (SO_PEERPIDFD)'
  : !tcpRepairAvailable().ok ? 'needs the native addon' : false;

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
  const path = join(dir, 'u.sock');
  let accepted: (s: Socket) => void = () => undefined;
  const conn = new Promise<Socket>((r) => { accepted = r; });
  const srv = createServer((s) => accepted(s));
  await new Promise<void>((r) => srv.listen(path, r));
  t.after(() => srv.close());
  const child = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', CHILD, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => { child.stdin.end(); child.kill(); });
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
  closePeerSocket(got.fd);
  // the host's netns (any other): refused
  refused(nonBlocking, ours, 'other-netns');
  // a blocking socket: refused (its file flags are the app's: never changed)
  refused(blocking, theirs, 'blocking');
  refused(100_000, theirs, 'no-such-fd');
  assert.equal(fds(), before, 'nothing left open here');
  // a namespace that is gone (a guest being removed): a code the guest library knows means nothing was sent
  assert.throws(() => netnsId(`/run/netns/${ns}-gone`), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE');
  s.destroy();
});
