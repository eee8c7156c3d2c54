// The host's part of a socket-offload handoff as one native job (sendDrainFreeze: the addon's offloadTransfer) on
// loopback, on a connection moved to an fd of our own as the host holds one (frozen, dumped, the Node socket closed
// silently, restored): the range arrives byte-exact, the job waits for the client's ACKs and hands back a state that
// carries on; a client that half-closed gives "closing"; a client whose ACKs never come gives "gone" after the stall
// time, and the abort function ends that wait as "aborted"; a client reset mid-send rejects with the bytes sent; the
// job leaves no descriptor behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HylicsError } from '../../src/core/errors/index.js';
import type { TcpStateT } from '../../src/core/protocol/index.js';
import { execFileSync } from 'node:child_process';
import {
  FROZEN_TOS, HOST_SOCKET_TOS, TCP_STATE, closeLeavingNothing, dropFilter, freezeAndDump, queues, restore,
  sendDrainFreeze, sendfileFd, socketFd, tcpRepairAvailable, thawHandoff,
} from '../../src/os/tcp-repair.js';

const skip = process.getuid?.() !== 0 ? 'needs root (TCP_REPAIR needs CAP_NET_ADMIN)'
  : !tcpRepairAvailable().ok ? `native addon: ${tcpRepairAvailable().reason}` : false;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const openFds = (): number => readdirSync('/proc/self/fd').length;

/** A loopback connection whose server side is an fd of ours (as the host's restored socket), the client Node's. */
interface Held { fd: number; client: Socket; got: () => Buffer; state: TcpStateT; close: () => void }

async function held(t: { after: (fn: () => void) => void }): Promise<Held> {
  const srv = createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const client = connect((srv.address() as AddressInfo).port, '127.0.0.1');
  const server = await accepted;
  const chunks: Buffer[] = [];
  client.on('data', (d: Buffer) => chunks.push(d));
  client.on('error', () => undefined);
  const state = freezeAndDump(socketFd(server)!);
  server.destroy(); // in repair mode: closes silently
  const fd = restore(state);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    closeLeavingNothing(fd);
  };
  t.after(() => {
    try { close(); } catch { /* gone */ }
    client.destroy();
    srv.close();
  });
  return { fd, client, got: () => Buffer.concat(chunks), state, close };
}

function fileOf(t: { after: (fn: () => void) => void }, body: Buffer): number {
  const dir = mkdtempSync(join(tmpdir(), 'hylics-xfer-'));
  writeFileSync(join(dir, 'f'), body);
  const fd = openSync(join(dir, 'f'), 'r');
  t.after(() => { closeSync(fd); rmSync(dir, { recursive: true, force: true }); });
  return fd;
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); await sleep(10)) if (Date.now() > end) throw new Error(`timed out: ${what}`);
}

test('send, drain and freeze in one job: byte-exact, drained ok, the state carries on', { skip }, async (t) => {
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const file = fileOf(t, body);
  const tail = fileOf(t, Buffer.from('TAIL'));
  const { fd, client, got, state: before, close } = await held(t);
  const opts = { stallMs: 10_000, drainMaxUnacked: 0, freeze: true, pollUs: 250 };
  const r = await sendDrainFreeze(fd, file, 0, body.length, opts);
  assert.equal(r.bytes, body.length);
  assert.equal(r.drained, 'ok');
  assert.equal(r.filtered, true);
  assert.equal(r.freezeError, undefined);
  assert.ok(r.state, 'a state');
  assert.equal(r.state.sendQueue, '', 'everything acknowledged: nothing in the dumped send queue');
  assert.equal((r.state.sendSeq - before.sendSeq) >>> 0, body.length);
  // the dump is the connection: restored elsewhere, it carries on in both directions
  close();
  const fd2 = restore(r.state);
  t.after(() => { try { closeLeavingNothing(fd2); } catch { /* gone */ } });
  assert.equal(await sendfileFd(fd2, tail, 0, 4, 5000), 4);
  await until(() => got().length >= body.length + 4, 'all bytes at the client');
  assert.equal(sha(got().subarray(0, body.length)), sha(body));
  assert.equal(got().subarray(body.length).toString(), 'TAIL');
  client.write('after');
  await until(() => queues(fd2).inq === 5, 'the client\'s bytes at the restored socket');
});

/** The IP_TOS of the socket whose local port is `port` on 127.0.0.1 (ss --tos; 0 when it shows none). */
function tosOf(port: number): number {
  const out = execFileSync('ss', ['-tnH', '--tos', 'src', `127.0.0.1:${port}`]).toString();
  return parseInt(/\btos:(0x[0-9a-f]+)/.exec(out)?.[1] ?? '0', 16);
}

// docs/offload-socket.md "Frozen sockets send nothing": the host's frozen copy gets FROZEN_DSCP (the steering
// table's output rule drops its packets until it is closed); thawed to finish the connection itself, its own again
test('silent: the frozen copy\'s packets carry FROZEN_DSCP; thawHandoff gives its own back and it carries on', { skip }, async (t) => {
  const body = randomBytes(64 * 1024);
  const file = fileOf(t, body);
  const tail = fileOf(t, Buffer.from('TAIL'));
  const { fd, got, state } = await held(t);
  const port = state.localPort;
  assert.equal(tosOf(port), 0);
  const opts = { stallMs: 10_000, drainMaxUnacked: 0, freeze: true, silent: true, pollUs: 250 };
  const r = await sendDrainFreeze(fd, file, 0, body.length, opts);
  assert.equal(r.drained, 'ok');
  assert.ok(r.state, 'a state');
  assert.equal(tosOf(port), FROZEN_TOS, 'frozen: its packets carry FROZEN_DSCP');
  thawHandoff(fd, HOST_SOCKET_TOS);
  assert.equal(tosOf(port), 0, 'thawed: its own IP_TOS again');
  assert.equal(await sendfileFd(fd, tail, 0, 4, 5000), 4);
  await until(() => got().length >= body.length + 4, 'all bytes at the client');
  assert.equal(sha(got().subarray(0, body.length)), sha(body));
  assert.equal(got().subarray(body.length).toString(), 'TAIL');
});

test('a head before the range, in the same job: head then body byte-exact, the head counted apart', { skip }, async (t) => {
  const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n`);
  const body = randomBytes(100_000);
  const file = fileOf(t, body);
  const { fd, got, state: before } = await held(t);
  const opts = { stallMs: 10_000, drainMaxUnacked: 0, freeze: true, pollUs: 250, head };
  const r = await sendDrainFreeze(fd, file, 0, body.length - 1, opts);
  assert.equal(r.bytes, body.length - 1, 'range bytes only');
  assert.equal(r.headBytes, head.length);
  assert.equal(r.drained, 'ok');
  assert.ok(r.state);
  assert.equal((r.state.sendSeq - before.sendSeq) >>> 0, head.length + body.length - 1, 'head and range both went out');
  await until(() => got().length >= head.length + body.length - 1, 'all bytes at the client');
  assert.equal(sha(got()), sha(Buffer.concat([head, body.subarray(0, body.length - 1)])));
  // a head with nothing of the range after it (a one-byte range in return mode) is not left corked
  const h2 = await held(t);
  const r2 = await sendDrainFreeze(h2.fd, file, 0, 0, opts);
  assert.equal(r2.headBytes, head.length);
  assert.equal(r2.drained, 'ok', 'transmitted and acknowledged: not held back by MSG_MORE');
  await until(() => h2.got().length >= head.length, 'the head at the client');
  assert.equal(h2.got().toString(), head.toString());
});

test('a client that half-closed: the drain ends "closing", nothing frozen', { skip }, async (t) => {
  const body = randomBytes(1024 * 1024);
  const file = fileOf(t, body);
  const { fd, client, got } = await held(t);
  client.end();
  await until(() => queues(fd).state === TCP_STATE.CLOSE_WAIT, 'CLOSE_WAIT');
  const r = await sendDrainFreeze(fd, file, 0, body.length, { stallMs: 10_000, drainMaxUnacked: 0, freeze: true });
  assert.equal(r.bytes, body.length);
  assert.equal(r.drained, 'closing');
  assert.equal(r.state, undefined);
  assert.equal(r.filtered, false);
  await until(() => got().length >= body.length, 'all bytes at the client');
  assert.equal(sha(got()), sha(body));
});

test('a client whose ACKs never come: "gone" after the stall time; the abort ends the wait as "aborted"', { skip }, async (t) => {
  const file = fileOf(t, randomBytes(64 * 1024));
  const { fd } = await held(t);
  dropFilter(fd, true); // nothing of the client reaches the socket: its ACKs neither
  const t0 = Date.now();
  const r = await sendDrainFreeze(fd, file, 0, 64 * 1024, { stallMs: 300, drainMaxUnacked: 0, freeze: true });
  assert.equal(r.bytes, 64 * 1024);
  assert.equal(r.drained, 'gone');
  assert.ok(Date.now() - t0 >= 300, `gone after ${Date.now() - t0} ms`);
  assert.equal(r.state, undefined);
  assert.equal(queues(fd).state, TCP_STATE.ESTABLISHED, 'not frozen, not closed: the caller decides');
  const { fd: fd2 } = await held(t);
  dropFilter(fd2, true);
  let abort: (() => void) | undefined;
  const onStart = (a: () => void): void => { abort = a; };
  const p = sendDrainFreeze(fd2, file, 0, 64 * 1024, { stallMs: 30_000, drainMaxUnacked: 0, freeze: true, onStart });
  await sleep(100);
  abort!();
  const a = await p;
  assert.equal(a.drained, 'aborted');
  assert.equal(a.state, undefined);
});

test('a client reset mid-send: the job rejects with the bytes sent (peer closed)', { skip }, async (t) => {
  const size = 64 * 1024 * 1024;
  const file = fileOf(t, Buffer.alloc(size, 7));
  const { fd, client } = await held(t);
  client.pause(); // takes nothing: the window closes, the send waits
  const p = sendDrainFreeze(fd, file, 0, size, { stallMs: 30_000, drainMaxUnacked: 0, freeze: true });
  await until(() => queues(fd).unsent > 0, 'the send waiting on the client');
  await sleep(100);
  client.resetAndDestroy();
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HylicsError);
    assert.equal(e.code, 'HYLICS_ERR_PEER_CLOSED');
    const sent = e.details?.bytesSent as number;
    assert.ok(sent > 0 && sent < size, `bytesSent ${sent}`);
    return true;
  });
});

test('the job leaves no descriptor behind, whatever the outcome', { skip }, async (t) => {
  const body = randomBytes(256 * 1024);
  const file = fileOf(t, body);
  // the engine's thread, epoll and timer, and the drop filter's program exist after a first job that froze
  const warm = await held(t);
  assert.equal((await sendDrainFreeze(warm.fd, file, 0, body.length, { stallMs: 5000, drainMaxUnacked: 0, freeze: true })).drained, 'ok');
  const conns = await Promise.all(Array.from({ length: 6 }, () => held(t)));
  const n0 = openFds();
  for (const [i, c] of conns.entries()) {
    if (i === 1) c.client.end();
    if (i === 2) dropFilter(c.fd, true);
    if (i === 1) await until(() => queues(c.fd).state === TCP_STATE.CLOSE_WAIT, 'CLOSE_WAIT');
  }
  const results = await Promise.allSettled(conns.map((c, i) => sendDrainFreeze(c.fd, file, 0, body.length, {
    stallMs: 300, ...(i === 5 ? {} : { drainMaxUnacked: 0, freeze: i % 2 === 0 }),
  })));
  assert.deepEqual(results.map((r) => r.status === 'fulfilled' ? r.value.drained ?? 'sent' : 'rejected'), ['ok', 'closing', 'gone', 'ok', 'ok', 'sent']);
  assert.equal(openFds(), n0, 'as many descriptors open as before the jobs');
});
