// Child process of test/os/tcp-repair-queues.test.ts, run in a network namespace of its own (`unshare -n`, lo with
// MTU 1500 so the connection's MSS is an Ethernet link's): one real TCP connection over lo whose state is dumped
// with a large queue and restored on a new socket, then every byte is checked (sha256).
//   send SIZE: the server's SIZE bytes are sent but never acknowledged (a drop filter keeps the client's ACKs
//              from the server), so they are in the dumped send queue; restored, the client must get all of them.
//   recv SIZE: the client's SIZE bytes wait unread in the server's receive queue; restored, the server reads them.
//   cap SIZE:  the server's socket is restored as the host restores a handed-over one (receive queue capped at
//              MAX_QUEUE_BYTES), with a window grown large by a warm-up; the client sends SIZE bytes it does not
//              read; dumped, its receive queue must fit a state, and restored again (the guest) it reads every byte.
//   tail N:    the server's N full segments are sent and never acknowledged (as `send`), dumped and restored on a
//              new socket behind the drop filter, thawed (its window probe's answer cannot get in: as when the
//              client rate-limits or PAWS-drops it), and one byte (the range's tail) written with TCP_NODELAY:
//              prints { mode, size, queued, unsent, tailUnsent }, tailUnsent 0 when the byte left at once, 1 when the
//              restored socket's fresh congestion window held it back (until an ACK or its loss probe).
// Prints one JSON line: { mode, size, queued, unsent, got, same }. The restore is synchronous: a restore that
// blocks never prints (the test's watchdog ends the child).
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, Socket, type AddressInfo } from 'node:net';
import { MAX_QUEUE_BYTES } from '../../src/core/protocol/index.js';
import { nativeAddon } from '../../src/os/native.js';
import { fromWire, restore, setRepair, toWire } from '../../src/os/tcp-repair.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function main(): Promise<void> {
  const a = nativeAddon().addon;
  if (!a?.dropFilter) throw new Error('no addon');
  const [mode, sizeArg] = process.argv.slice(2);
  const size = Number(sizeArg);
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const client = connect((srv.address() as AddressInfo).port, '127.0.0.1');
  const server = await accepted;
  let fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  // warm up the direction under test (windows and congestion window grow, as in a bulk transfer)
  const warm = randomBytes(8 << 20);
  const [from, to] = mode === 'send' || mode === 'tail' ? [server, client] : [client, server];
  if (mode === 'cap') {
    // the warm-up grew the server's window (autotuning): a client may send far more than 256 KiB unasked
    await new Promise<void>((r) => { let n = 0; const on = (d: Buffer): void => { n += d.length; if (n >= warm.length) { to.off('data', on); r(); } }; to.on('data', on); from.write(warm); });
    server.pause();
    (server as unknown as { _handle: { readStop(): void } })._handle.readStop();
    const frozen = toWire(a.tcpRepairDump(fd));
    a.closeFd(fd); // frozen: silently
    fd = restore(frozen, { maxRecvQueue: MAX_QUEUE_BYTES }); // the host's copy: nobody reads it
    const body = randomBytes(size);
    client.write(body);
    // until the queue stops growing (the rest waits at the client)
    let last = -1;
    for (let i = 0; i < 100; i++) {
      await sleep(100);
      const q = a.tcpQueues(fd).inq;
      if (q === last && i >= 5) break;
      last = q;
    }
    const held = a.tcpRepairDump(fd);
    a.closeFd(fd);
    const nfd = a.tcpRepairRestore(fromWire(toWire(held)), {}); // the guest's, reading
    const got: Buffer[] = [];
    const s = new Socket({ fd: nfd, readable: true, writable: true });
    s.on('data', (d: Buffer) => got.push(d));
    const total = (): number => got.reduce((n, b) => n + b.length, 0);
    for (let i = 0; i < 3000 && total() < size; i++) await sleep(10);
    const all = Buffer.concat(got);
    process.stdout.write(`${JSON.stringify({ mode, size, queued: held.recvQueue.length, got: all.length, same: sha(all) === sha(body) })}\n`);
    process.exit(0);
  }
  await new Promise<void>((r) => { let n = 0; const on = (d: Buffer): void => { n += d.length; if (n >= warm.length) { to.off('data', on); r(); } }; to.on('data', on); from.write(warm); });
  if (mode === 'tail') {
    const mss = 1448; // lo with MTU 1500 and timestamps (the test's netns turns slow start after idle off)
    a.dropFilter(fd, true);
    server.write(randomBytes(size * mss));
    for (let i = 0; i < 500 && a.tcpQueues(fd).unsent > 0; i++) await sleep(10);
    const st = toWire(a.tcpRepairDump(fd));
    // frozen: closes silently (through its handle: a new handle on the same fd number would meet libuv's old one)
    await new Promise<void>((r) => { server.once('close', () => r()); server.destroy(); });
    const nfd = restore(st, { frozen: true, dropFilter: true });
    const s = new Socket({ fd: nfd, readable: false, writable: true });
    s.setNoDelay(true); // as the guest's tail write
    setRepair(nfd, false); // thawed (window probe); the filter stays: no ACK gets in
    await new Promise<void>((r) => s.write(Buffer.from('x'), () => r()));
    const tailUnsent = a.tcpQueues(nfd).unsent;
    process.stdout.write(`${JSON.stringify({ mode, size, queued: Buffer.byteLength(st.sendQueue, 'base64'), unsent: st.unsentBytes, tailUnsent })}\n`);
    process.exit(0);
  }
  const body = randomBytes(size);
  const got: Buffer[] = [];
  let state;
  if (mode === 'send') {
    client.on('data', (d: Buffer) => got.push(d));
    a.dropFilter(fd, true); // the client's ACKs never reach the server: what it sends stays unacknowledged
    server.write(body);
    for (let i = 0; i < 500 && a.tcpQueues(fd).unsent > 0; i++) await sleep(10);
    await sleep(100);
    state = a.tcpRepairDump(fd);
  } else {
    server.pause();
    (server as unknown as { _handle: { readStop(): void } })._handle.readStop();
    client.write(body);
    for (let i = 0; i < 500 && a.tcpQueues(fd).inq < size; i++) await sleep(10);
    state = a.tcpRepairDump(fd);
  }
  a.closeFd(fd); // frozen: goes silently
  const nfd = a.tcpRepairRestore(state, {});
  if (mode === 'recv') {
    const s = new Socket({ fd: nfd, readable: true, writable: true });
    s.on('data', (d: Buffer) => got.push(d));
  }
  const total = (): number => got.reduce((n, b) => n + b.length, 0);
  for (let i = 0; i < 3000 && total() < size; i++) await sleep(10);
  const all = Buffer.concat(got);
  const queued = mode === 'send' ? state.sendQueue.length : state.recvQueue.length;
  process.stdout.write(`${JSON.stringify({ mode, size, queued, unsent: state.unsentBytes, got: all.length, same: sha(all) === sha(body) })}\n`);
  process.exit(0);
}

main().catch((e: unknown) => { process.stdout.write(`${JSON.stringify({ error: String(e) })}\n`); process.exit(1); });
