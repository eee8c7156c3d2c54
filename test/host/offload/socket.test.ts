// The host's refusals of a socket handoff, before anything is held: a flow that is not on the guest's own address,
// a file outside its share (.., absolute, a symlink out), a file that is not there; an unknown handoff; fallback
// counters in `guest show` and in Prometheus; a head over its limit, and the head counted in the byte budget. (The
// handoff itself runs end to end in test/host/socket-offload.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { HylicsError } from '../../../src/core/errors/index.js';
import {
  DIRECT_ONLY_OPS, MAX_HANDOFF_HEAD_BYTES, OffloadHandoffParams, checkSchema, type OffloadBeginParamsT,
  type OffloadHandoffParamsT,
} from '../../../src/core/protocol/index.js';
import { SocketOffload } from '../../../src/host/offload/socket.js';
import type { DirectConn } from '../../../src/host/backends.js';
import { tcpRepairAvailable } from '../../../src/os/tcp-repair.js';
import { waitUntil } from '../../helpers/proc.js';

const skip = process.getuid?.() !== 0 ? 'needs root (the daemon side of socket offload runs as root)' : !tcpRepairAvailable().ok ? `native addon: ${tcpRepairAvailable().reason}` : false;
const SILENT = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function setup(t: { after: (fn: () => void) => void }, opts: { maxBytesPerGuest?: number } = {}): {
  off: SocketOffload;
  registry: Registry;
  handlers: Map<string, (g: string, p: unknown) => Promise<unknown>>;
} {
  const base = mkdtempSync(join(tmpdir(), 'hylics-sockoff-'));
  const share = join(base, 'share');
  const outside = join(base, 'outside');
  mkdirSync(share);
  mkdirSync(outside);
  writeFileSync(join(base, 'secret'), 'x');
  writeFileSync(join(share, 'f'), 'hello');
  symlinkSync(join(base, 'secret'), join(share, 'link'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const registry = new Registry();
  const off = new SocketOffload({ log: SILENT, registry, ...opts });
  const handlers = new Map<string, (g: string, p: unknown) => Promise<unknown>>();
  off.wire(
    {
      handle: (op, fn) => {
        handlers.set(op, fn);
      },
      onConnection: () => undefined,
    },
    (guest) => {
      if (guest !== 'g1') throw new HylicsError('HYLICS_ERR_GUEST_NOT_FOUND', guest);
      return { addr: '10.213.9.2', sharePath: share };
    },
  );
  return { off, registry, handlers };
}

const flow = (over: Partial<OffloadBeginParamsT> = {}): OffloadBeginParamsT => ({ localAddr: '10.213.9.2', localPort: 8080, remoteAddr: '10.1.2.3', remotePort: 40000, path: 'f', offset: 0, mode: 'return', ...over });
const code = async (p: Promise<unknown>): Promise<string> => { try { await p; return 'ok'; } catch (e) { return e instanceof HylicsError ? e.code : String(e); } };

test('refusals before anything is held; counters', { skip }, async (t) => {
  const { off, registry, handlers } = setup(t);
  for (const op of ['offload.socket.begin', 'offload.socket.send', 'offload.socket.release', 'offload.socket.fallback']) assert.ok(handlers.has(op), op);
  assert.equal(await code(off.begin('g1', flow({ localAddr: '10.213.10.2' }))), 'HYLICS_ERR_OFFLOAD_NOT_GUEST_FLOW', 'another address');
  assert.equal(await code(off.begin('g1', flow({ path: '../secret' }))), 'HYLICS_ERR_PATH_ESCAPE', '..');
  assert.equal(await code(off.begin('g1', flow({ path: '/etc/passwd' }))), 'HYLICS_ERR_PATH_ESCAPE', 'absolute');
  assert.equal(await code(off.begin('g1', flow({ path: 'link' }))), 'HYLICS_ERR_PATH_ESCAPE', 'symlink out of the share');
  assert.equal(await code(off.begin('g1', flow({ path: 'nope' }))), 'HYLICS_ERR_FILE_NOT_FOUND');
  assert.equal(await code(off.send('g1', { handoff: 'h999', state: {} as never })), 'HYLICS_ERR_OFFLOAD_UNKNOWN_HANDOFF');
  assert.deepEqual(await off.release('g1', 'h999'), { released: false }, 'release is idempotent');
  off.fallback('g1', 'no-cap-net-admin');
  off.fallback('g1', 'no-cap-net-admin');
  off.fallback('g1', 'budget');
  const s = off.stats('g1');
  assert.equal(s.available, true);
  assert.deepEqual(s.fallbacks, { 'no-cap-net-admin': 2, budget: 1 });
  assert.equal(s.handoffs, 0);
  assert.equal(s.inFlight, 0, 'nothing held after refusals');
  const text = await registry.metrics();
  assert.match(text, /hylics_offload_socket_fallbacks_total\{guest="g1",reason="no-cap-net-admin"\} 2/);
  for (const n of ['hylics_offload_socket_handoffs_total', 'hylics_offload_socket_bytes_total', 'hylics_offload_socket_handoff_seconds']) assert.match(text, new RegExp(`# TYPE ${n} `));
});

test('a one-round-trip handoff whose state is of another connection is refused and leaves nothing in flight', { skip }, async (t) => {
  const { off } = setup(t);
  t.after(() => off.guestGone('g1'));
  const fds = readdirSync('/proc/self/fd').length;
  for (const other of [{ localAddr: '10.213.10.2' }, { remotePort: 40001 }]) {
    // the params name the guest's own flow (they pass the checks); the state is another guest's (or connection's)
    const state = { localAddr: '10.213.9.2', localPort: 8080, remoteAddr: '10.1.2.3', remotePort: 40000, ...other };
    const r = off.handoff('g1', { ...flow(), state: state as never, holdUntilRelease: true });
    assert.equal(await code(r), 'HYLICS_ERR_OFFLOAD_NOT_GUEST_FLOW');
  }
  assert.equal(off.stats('g1').inFlight, 0, 'nothing counted in flight (the guest\'s budget)');
  assert.equal(readdirSync('/proc/self/fd').length, fds, 'the file opened for it is closed');
});

test('a handoff\'s head: over MAX_HANDOFF_HEAD_BYTES refused (schema and handler), counted in the guest\'s byte budget', { skip }, async (t) => {
  const { off } = setup(t);
  t.after(() => off.guestGone('g1'));
  const state = {
    localAddr: '10.213.9.2', localPort: 8080, remoteAddr: '10.1.2.3', remotePort: 40000, sendSeq: 1, recvSeq: 1,
    sendQueue: '', unsentBytes: 0, recvQueue: '', mss: 1460, timestamp: 0, options: 0, sndWscale: 0, rcvWscale: 0,
    window: { sndWl1: 0, sndWnd: 0, maxWindow: 0, rcvWnd: 0, rcvWup: 0 },
  };
  const params = (head: Buffer): OffloadHandoffParamsT => ({ ...flow(), state: state as never, holdUntilRelease: true, head: head.toString('base64') });
  // the op's schema: a base64 string of at most MAX_HANDOFF_HEAD_BYTES (rounded up to whole base64 groups)
  assert.doesNotThrow(() => checkSchema(OffloadHandoffParams, params(Buffer.alloc(MAX_HANDOFF_HEAD_BYTES, 65)), 'p'));
  assert.throws(() => checkSchema(OffloadHandoffParams, params(Buffer.alloc(MAX_HANDOFF_HEAD_BYTES + 3, 65)), 'p'), /head/);
  assert.throws(() => checkSchema(OffloadHandoffParams, { ...params(Buffer.from('x')), head: 'not base64!' }, 'p'), /head/);
  // the handler checks the decoded length too (the schema lets 2 bytes more through)
  assert.equal(await code(off.handoff('g1', params(Buffer.alloc(MAX_HANDOFF_HEAD_BYTES + 1, 65)))), 'HYLICS_ERR_INVALID_ARGUMENT');
  // the file is 5 bytes: with a 10-byte head the handoff weighs 15 against a budget of 14
  const { off: small } = setup(t, { maxBytesPerGuest: 14 });
  t.after(() => small.guestGone('g1'));
  assert.equal(await code(small.handoff('g1', params(Buffer.alloc(10, 65)))), 'HYLICS_ERR_OFFLOAD_BUDGET', 'head + range over the budget');
  // without the head it fits (and fails later, at the state check: this state is not a real connection's)
  assert.equal(await code(small.handoff('g1', { ...flow(), state: { ...state, remotePort: 1 } as never })), 'HYLICS_ERR_OFFLOAD_NOT_GUEST_FLOW');
  assert.equal(small.stats('g1').inFlight, 0);
});

test('descriptor copy (sendfd): head + range on a duplicate of the caller\'s socket, byte-exact; refusals send nothing and leave nothing open', { skip }, async (t) => {
  const { createServer, connect } = await import('node:net');
  const { peerPidfd, closePidfd, streamFd, takePeerSocket } = await import('../../../src/os/peer-socket.js');
  const base = mkdtempSync(join(tmpdir(), 'hylics-sendfd-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const body = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  for (let i = 0; i < body.length; i += 4096) body[i] = i & 0xff;
  writeFileSync(join(base, 'f'), body);
  const registry = new Registry();
  // the guest: this process, its loopback address and its own netns
  const off = new SocketOffload({ log: SILENT, registry });
  type Fn = (g: string, p: unknown, s?: AbortSignal, c?: DirectConn) => Promise<unknown>;
  const handlers = new Map<string, Fn>();
  const opts = new Map<string, unknown>();
  off.wire({ handle: (op, fn, o) => { handlers.set(op, fn); opts.set(op, o); }, onConnection: () => undefined },
    () => ({ addr: '127.0.0.1', sharePath: base, netns: '/proc/self/ns/net' }));
  assert.ok(DIRECT_ONLY_OPS.includes('offload.socket.sendfd'), 'served on the direct socket only (channel-backend), never relayed (agent)');
  // "the app": a Unix connection to "hylicsd" (its peer is this very process) and a TCP connection to a reader
  const upath = join(base, 'u.sock');
  let unixConn: import('node:net').Socket | undefined;
  const usrv = createServer((s) => { unixConn = s; });
  await new Promise<void>((r) => usrv.listen(upath, r));
  const app = connect(upath);
  await new Promise<void>((r) => app.once('connect', () => r()));
  for (let i = 0; i < 100 && !unixConn; i++) await new Promise((r) => setTimeout(r, 10));
  const pidfd = peerPidfd(streamFd(unixConn!)!);
  t.after(() => { closePidfd(pidfd); app.destroy(); usrv.close(); });
  const conn = { takeSocket: (fd: number, ns: { dev: number; ino: number }) => takePeerSocket(pidfd, fd, ns) };
  const chunks: Buffer[] = [];
  let gotEnd: () => void = () => undefined;
  const ended = new Promise<void>((r) => { gotEnd = r; });
  const tsrv = createServer((s) => { s.on('data', (d: Buffer) => chunks.push(d)); s.on('end', () => { gotEnd(); s.end(); }); });
  await new Promise<void>((r) => tsrv.listen(0, '127.0.0.1', r));
  t.after(() => tsrv.close());
  const client = connect((tsrv.address() as { port: number }).port, '127.0.0.1');
  t.after(() => client.destroy());
  await new Promise<void>((r) => client.once('connect', () => r()));
  const fd = streamFd(client)!;
  const fds = (): number => readdirSync('/proc/self/fd').length;
  // duplicates are closed on a thread of their own (closeShared): counts are read once those closes are done
  const settledFds = async (): Promise<number> => {
    for (let last = -1; ;) {
      const n = fds();
      if (n === last) return n;
      last = n;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const send = handlers.get('offload.socket.sendfd')!;
  // nothing to send (the addon's I/O thread starts with its epoll and eventfd: counted before)
  assert.deepEqual(await send('g1', { fd, path: 'f', offset: 0, count: 0 }, undefined, conn), { bytes: 0, headBytes: 0, count: 0 });
  const before = await settledFds();
  const head = Buffer.from('HTTP/1.1 200 OK\r\n\r\n');
  const r = await send('g1', { fd, path: 'f', offset: 5, head: head.toString('base64') }, undefined, conn) as { bytes: number; headBytes: number; count: number };
  assert.deepEqual(r, { bytes: body.length - 5, headBytes: head.length, count: body.length - 5 });
  // the app's socket is live and its own: it writes after the host's bytes, in order
  client.end('tail');
  await ended;
  assert.ok(Buffer.concat(chunks).equals(Buffer.concat([head, body.subarray(5), Buffer.from('tail')])), 'byte-exact, in order');
  await waitUntil('the duplicate and the file closed', () => fds() === before, 10_000, 20);
  // refusals: nothing sent, nothing left open, counted by why
  const refusal = async (p: unknown, c: DirectConn | null = conn): Promise<string> => {
    try { await send('g1', p, undefined, c ?? undefined); return 'sent'; } catch (e) {
      const he = e as HylicsError;
      return `${he.code} ${String(he.details?.why ?? '')} ${he.details?.bytesSent === undefined ? 'nothing-sent' : 'sent'}`;
    }
  };
  const other = connect((tsrv.address() as { port: number }).port, '127.0.0.1');
  t.after(() => other.destroy());
  await new Promise<void>((r) => other.once('connect', () => r()));
  const ofd = streamFd(other)!;
  const before2 = await settledFds();
  assert.equal(await refusal({ fd: ofd, path: 'f', offset: 0 }, null), 'HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE  nothing-sent', 'not on the direct socket');
  assert.equal(await refusal({ fd: 1_000_000, path: 'f', offset: 0 }), 'HYLICS_ERR_OFFLOAD_FD_REFUSED no-such-fd nothing-sent');
  assert.equal(await refusal({ fd: streamFd(tsrv as unknown as import('node:net').Socket)!, path: 'f', offset: 0 }), 'HYLICS_ERR_OFFLOAD_FD_REFUSED not-connected nothing-sent', 'a listening socket');
  assert.equal(await refusal({ fd: streamFd(app)!, path: 'f', offset: 0 }), 'HYLICS_ERR_OFFLOAD_FD_REFUSED not-ipv4 nothing-sent', 'a Unix socket');
  assert.equal(await refusal({ fd: ofd, path: '../f', offset: 0 }), 'HYLICS_ERR_PATH_ESCAPE  nothing-sent');
  assert.equal(await refusal({ fd: ofd, path: 'nope', offset: 0 }), 'HYLICS_ERR_FILE_NOT_FOUND  nothing-sent');
  await waitUntil('every duplicate closed', () => fds() === before2, 10_000, 20);
  const s = off.stats('g1');
  assert.deepEqual(s.byCopy, { fd: 2, repair: 0 });
  assert.equal(s.inFlight, 0);
  assert.equal(s.fdRefused?.['no-such-fd'], 1);
  assert.match(await registry.metrics(), /hylics_offload_socket_handoffs_total\{guest="g1",copy="fd"\} 2/);
  other.destroy();
});
