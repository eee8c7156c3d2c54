import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Type } from '@sinclair/typebox';
import { ChannelPeer, ReplyCache, listenUnix, connectUnix, type PeerOptions } from '../../../src/os/channel/index.js';
import { OpRegistry, defineOp, defineEvent, encodeMessage, encodeFrame, FrameDecoder, decodeMessage, PROTOCOL_VERSION } from '../../../src/core/protocol/index.js';
import { HylicsError } from '../../../src/core/errors/index.js';

const reg = new OpRegistry();
reg.register(
  defineOp({ name: 'test.echo', server: 'host', params: Type.Object({ s: Type.String() }), result: Type.Object({ s: Type.String() }), doc: 'echo' }),
  defineOp({ name: 'test.sleep', server: 'host', params: Type.Object({ ms: Type.Integer() }), result: Type.Object({ aborted: Type.Boolean() }), doc: 'sleep' }),
  defineOp({ name: 'test.idem', server: 'host', params: Type.Object({ n: Type.Integer() }), result: Type.Object({ run: Type.Integer(), n: Type.Integer() }), idempotent: true, doc: 'idempotent' }),
  defineOp({ name: 'test.lie', server: 'host', params: Type.Object({}), result: Type.Object({ n: Type.Integer() }), doc: 'returns a bad result' }),
);
reg.registerEvent(defineEvent({ name: 'test.tick', from: 'guest', data: Type.Object({ n: Type.Integer() }), doc: 'tick' }));

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), `hylics-peer-${process.pid}-`));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A connected pair of real Unix sockets. */
async function socketPair(t: { after: (fn: () => unknown) => void }): Promise<[Socket, Socket]> {
  const path = join(tmp(t), 's.sock');
  let accepted!: (s: Socket) => void;
  const got = new Promise<Socket>((r) => { accepted = r; });
  const server = await listenUnix(path, (s) => accepted(s));
  const client = await connectUnix(path);
  const srv = await got;
  server.close(); // stop listening; the accepted connection lives on
  t.after(() => { client.destroy(); srv.destroy(); });
  return [srv, client];
}

async function peers(
  t: { after: (fn: () => unknown) => void },
  a: Partial<PeerOptions>,
  b: Partial<PeerOptions>,
): Promise<[ChannelPeer, ChannelPeer]> {
  const [s1, s2] = await socketPair(t);
  const host = new ChannelPeer(s1, { role: 'host', registry: reg, ...a });
  const guest = new ChannelPeer(s2, { role: 'guest', registry: reg, ...b });
  t.after(() => {
    host.close();
    guest.close();
  });
  await Promise.all([host.ready, guest.ready]);
  return [host, guest];
}

const code = (c: string) => (e: unknown) => e instanceof HylicsError && e.code === c;

test('hello exchange, requests and replies both ways, schemas checked', async (t) => {
  const [host, guest] = await peers(t, { handlers: { 'test.echo': (p: { s: string }) => ({ s: p.s.toUpperCase() }) }, name: 'hostside' }, { handlers: { 'test.echo': (p: { s: string }) => ({ s: `g:${p.s}` }) } });
  assert.equal(guest.remote?.role, 'host');
  assert.equal(guest.remote?.name, 'hostside');
  assert.deepEqual(guest.remote?.caps, ['test.echo']);
  assert.deepEqual(await guest.request('test.echo', { s: 'abc' }), { s: 'ABC' });
  assert.deepEqual(await host.request('test.echo', { s: 'x' }), { s: 'g:x' });
  const many = await Promise.all(Array.from({ length: 200 }, (_, i) => guest.request('test.echo', { s: `m${i}` })));
  assert.equal((many[199] as { s: string }).s, 'M199');
  await assert.rejects(guest.request('test.echo', { s: 5 } as never), code('HYLICS_ERR_CHANNEL_BAD_MESSAGE'));
  // trustedParams: the sender does not check, the remote still does (its handler never sees them)
  const out = guest.stats.framesOut;
  await assert.rejects(guest.request('test.echo', { s: 5 } as never, { trustedParams: true }), code('HYLICS_ERR_CHANNEL_BAD_MESSAGE'));
  assert.ok(guest.stats.framesOut > out, 'the request went out unchecked');
  assert.deepEqual(await guest.request('test.echo', { s: 'ok' }, { trustedParams: true }), { s: 'OK' });
  await assert.rejects(guest.request('no.such', {}), code('HYLICS_ERR_CHANNEL_UNKNOWN_OP'));
  assert.ok((await guest.ping()) >= 0);
});

test('deadlines: the caller gets DEADLINE and the handler sees its signal abort', async (t) => {
  let aborted!: (v: boolean) => void;
  const sawAbort = new Promise<boolean>((r) => { aborted = r; });
  const [, guest] = await peers(t, {
    handlers: {
      'test.sleep': async (p: { ms: number }, ctx) => {
        try {
          await sleep(p.ms, undefined, { signal: ctx.signal });
          aborted(false);
          return { aborted: false };
        } catch {
          aborted(true);
          return { aborted: true };
        }
      },
    },
  }, {});
  await assert.rejects(guest.request('test.sleep', { ms: 10_000 }, { timeoutMs: 150 }), code('HYLICS_ERR_CHANNEL_DEADLINE'));
  assert.equal(await sawAbort, true);
  assert.deepEqual(await guest.request('test.sleep', { ms: 1 }, { timeoutMs: 5000 }), { aborted: false });
  const ac = new AbortController();
  const p = guest.request('test.sleep', { ms: 10_000 }, { signal: ac.signal });
  ac.abort();
  await assert.rejects(p, code('HYLICS_ERR_CHANNEL_DEADLINE'));
});

test('events are delivered when registered and valid, dropped otherwise', async (t) => {
  const [host, guest] = await peers(t, {}, {});
  const got: unknown[] = [];
  host.on('event', (name, data) => got.push([name, data]));
  assert.equal(guest.emitEvent('test.tick', { n: 1 }), true);
  assert.throws(() => guest.emitEvent('test.tick', { n: 'x' } as never), code('HYLICS_ERR_CHANNEL_BAD_MESSAGE'));
  assert.throws(() => guest.emitEvent('test.nope', {}), code('HYLICS_ERR_CHANNEL_BAD_MESSAGE'));
  guest.emitEvent('test.tick', { n: 2 });
  await guest.ping();
  await host.ping();
  assert.deepEqual(got, [['test.tick', { n: 1 }], ['test.tick', { n: 2 }]]);
});

test('event flood: beyond maxEventsPerSec events are dropped and counted, requests still work', async (t) => {
  const [host, guest] = await peers(t, { maxEventsPerSec: 50, handlers: { 'test.echo': (p: { s: string }) => p } }, {});
  let n = 0;
  host.on('event', () => n++);
  for (let i = 0; i < 500; i++) guest.emitEvent('test.tick', { n: i });
  assert.deepEqual(await guest.request('test.echo', { s: 'ok' }), { s: 'ok' });
  assert.ok(n >= 50 && n < 500, `delivered ${n}`);
  assert.equal(host.stats.eventsDropped, 500 - n);
});

test('allow-list: ops outside it are denied, the channel stays up; a bad result is rejected by the caller', async (t) => {
  const [, guest] = await peers(t, {
    handlers: { 'test.echo': (p: { s: string }) => p, 'test.sleep': () => ({ aborted: false }), 'test.lie': () => ({ n: 'not a number' }) },
    allow: ['test.echo', 'test.lie'],
  }, {});
  await assert.rejects(guest.request('test.sleep', { ms: 1 }), code('HYLICS_ERR_CHANNEL_OP_DENIED'));
  await assert.rejects(guest.request('test.idem', { n: 1 }), code('HYLICS_ERR_CHANNEL_OP_DENIED'));
  await assert.rejects(guest.request('test.lie', {}), code('HYLICS_ERR_CHANNEL_BAD_MESSAGE'));
  assert.deepEqual(await guest.request('test.echo', { s: 'still up' }), { s: 'still up' });
});

test('in-flight limit: requests beyond maxInFlight + maxQueued get BUSY; queued ones run later', async (t) => {
  const [host, guest] = await peers(t, { maxInFlight: 2, maxQueued: 1, handlers: { 'test.sleep': async (p: { ms: number }) => { await sleep(p.ms); return { aborted: false }; } } }, {});
  const slow = [guest.request('test.sleep', { ms: 300 }), guest.request('test.sleep', { ms: 300 }), guest.request('test.sleep', { ms: 1 })];
  await assert.rejects(guest.request('test.sleep', { ms: 1 }), code('HYLICS_ERR_CHANNEL_BUSY'));
  await Promise.all(slow);
  await guest.request('test.sleep', { ms: 1 });
  // each request counted once on arrival: run, queued-then-run and refused alike
  assert.equal(host.stats.requestsIn, 5);
  assert.equal(guest.stats.requestsOut, 5);
});

test('idempotent ops: a retry with the same id (even on a new connection) gets the first reply without running again', async (t) => {
  const cache = new ReplyCache();
  let runs = 0;
  const handlers = { 'test.idem': async (p: { n: number }) => { runs++; await sleep(50); return { run: runs, n: p.n }; } };
  const [, g1] = await peers(t, { handlers, replyCache: cache }, {});
  const id = g1.allocId();
  const first = await g1.request('test.idem', { n: 7 }, { id });
  assert.deepEqual(first, { run: 1, n: 7 });
  assert.deepEqual(await g1.request('test.idem', { n: 7 }, { id }), first);
  // new connection (agent reconnected), same cache on the host side
  const [, g2] = await peers(t, { handlers, replyCache: cache }, {});
  assert.deepEqual(await g2.request('test.idem', { n: 7 }, { id }), first);
  assert.equal(runs, 1);
  // same id but different params: different work, runs
  assert.deepEqual(await g2.request('test.idem', { n: 8 }, { id }), { run: 2, n: 8 });
  // a retry while the first is still running joins it
  const id2 = g2.allocId();
  const [a, b] = await Promise.all([g1.request('test.idem', { n: 9 }, { id: id2 }), g2.request('test.idem', { n: 9 }, { id: id2 })]);
  assert.deepEqual(a, b);
  assert.equal(runs, 3);
});

test('close: pending requests fail with CLOSED, later requests too', async (t) => {
  const [host, guest] = await peers(t, { handlers: { 'test.sleep': async (p: { ms: number }) => { await sleep(p.ms); return { aborted: false }; } } }, {});
  const p = guest.request('test.sleep', { ms: 5000 });
  const closed = new Promise((r) => guest.once('close', r));
  host.close();
  await assert.rejects(p, code('HYLICS_ERR_CHANNEL_CLOSED'));
  await closed;
  await assert.rejects(guest.request('test.echo', { s: 'x' }), code('HYLICS_ERR_CHANNEL_CLOSED'));
});

test('garbage on a "close" channel: protocol-error, an ERROR frame with the code, then the connection closes', async (t) => {
  const [s1, s2] = await socketPair(t);
  const host = new ChannelPeer(s1, { role: 'host', registry: reg, helloTimeoutMs: 0 });
  t.after(() => host.close());
  const errs: string[] = [];
  host.on('protocol-error', (e: HylicsError) => errs.push(e.code));
  const d = new FrameDecoder();
  const fromHost: string[] = [];
  s2.on('data', (c: Buffer) => { for (const ev of d.push(c)) if (ev.kind === 'frame') { const m = decodeMessage(ev.frame); fromHost.push(m.type === 'error' ? m.error.code : m.type); } });
  s2.write(encodeMessage({ type: 'hello', id: 0, hello: { version: PROTOCOL_VERSION, role: 'guest', nonce: 'aaaaaaaaaaaaaaaa', caps: [], maxPayload: 1 << 20 } }));
  await host.ready;
  s2.write(encodeFrame({ id: 3, type: 3, payload: new TextEncoder().encode('{"op": "test.echo", "params": {"s": "x"') }));
  await new Promise((r) => host.once('close', r));
  assert.deepEqual(errs, ['HYLICS_ERR_CHANNEL_BAD_JSON']);
  await new Promise((r) => s2.once('close', r));
  assert.deepEqual(fromHost, ['hello', 'hello-ack', 'HYLICS_ERR_CHANNEL_BAD_JSON']);
});

test('version mismatch closes with CHANNEL_VERSION', async (t) => {
  const [s1, s2] = await socketPair(t);
  const host = new ChannelPeer(s1, { role: 'host', registry: reg });
  t.after(() => host.close());
  s2.on('data', () => {});
  s2.write(encodeMessage({ type: 'hello', id: 0, hello: { version: PROTOCOL_VERSION + 1, role: 'guest', nonce: 'bbbbbbbbbbbbbbbb', caps: [], maxPayload: 1 << 20 } }));
  const err = await new Promise<HylicsError | undefined>((r) => host.once('close', r));
  assert.ok(err);
  assert.equal(err.code, 'HYLICS_ERR_CHANNEL_VERSION');
  await assert.rejects(host.ready, code('HYLICS_ERR_CHANNEL_CLOSED'));
});

test('no hello within helloTimeoutMs: HANDSHAKE', async (t) => {
  const [s1, s2] = await socketPair(t);
  s2.on('data', () => {});
  const host = new ChannelPeer(s1, { role: 'host', registry: reg, helloTimeoutMs: 200, helloRetryMs: 50 });
  const err = await new Promise<HylicsError | undefined>((r) => host.once('close', r));
  assert.ok(err);
  assert.equal(err.code, 'HYLICS_ERR_CHANNEL_HANDSHAKE');
});

test('resync mode (virtio-serial): garbage in the stream, then both ends recover and keep serving', async (t) => {
  const [s1, s2] = await socketPair(t);
  const host = new ChannelPeer(s1, { role: 'host', registry: reg, onProtocolError: 'resync', helloRetryMs: 100, handlers: { 'test.echo': (p: { s: string }) => p } });
  const guest = new ChannelPeer(s2, { role: 'guest', registry: reg, onProtocolError: 'resync', helloRetryMs: 100 });
  t.after(() => { host.close(); guest.close(); });
  await Promise.all([host.ready, guest.ready]);
  const resets: string[] = [];
  guest.on('reset', () => resets.push('guest'));
  // stale bytes of a previous incarnation hit the host: a frame header promising more than the cap, then junk
  const junk = Buffer.concat([encodeFrame({ id: 1, type: 3, payload: new Uint8Array(0) }), Buffer.from('{"op":"garbage', 'utf8')]);
  junk.writeUInt32BE(2 ** 31, 0);
  s2.write(junk);
  // recovery: host hunts, re-hellos behind a marker, guest resets the session and acks
  await new Promise((r) => guest.once('ready', r));
  assert.deepEqual(await guest.request('test.echo', { s: 'after resync' }, { timeoutMs: 5000 }), { s: 'after resync' });
  assert.equal(host.stats.protocolErrors, 1);
  assert.deepEqual(resets, ['guest']);
  assert.ok(host.isOpen && guest.isOpen);
});

test('a restarted remote (new hello) fails in-flight requests with RESET and the session continues', async (t) => {
  const [s1, s2] = await socketPair(t);
  const guest = new ChannelPeer(s1, { role: 'guest', registry: reg });
  t.after(() => guest.close());
  const d = new FrameDecoder();
  const seen: string[] = [];
  const helloMsg = (nonce: string) => encodeMessage({ type: 'hello', id: 0, hello: { version: PROTOCOL_VERSION, role: 'host', nonce, caps: [], maxPayload: 1 << 20 } });
  s2.on('data', (c: Buffer) => { for (const ev of d.push(c)) if (ev.kind === 'frame') seen.push(decodeMessage(ev.frame).type); });
  s2.write(helloMsg('1111111111111111'));
  await guest.ready;
  const p = guest.request('test.echo', { s: 'lost' }, { timeoutMs: 5000 });
  await sleep(20);
  s2.write(helloMsg('2222222222222222'));
  await assert.rejects(p, code('HYLICS_ERR_CHANNEL_RESET'));
  assert.equal(guest.remote?.nonce, '2222222222222222');
  assert.ok(guest.connected);
  for (let i = 0; i < 100 && seen.filter((x) => x === 'hello-ack').length < 2; i++) await sleep(20);
  assert.equal(seen.filter((x) => x === 'hello-ack').length, 2);
});

test('an agent that reopens its port before any host answered keeps its nonce: its stale hellos are no restart', async (t) => {
  // the first agent peer's hellos sit in the port (nobody read them); the port closes; the next peer starts with the
  // same nonce. The host reads the stale hello, then the new peer's: one session, the request in between survives.
  const stale = encodeMessage({ type: 'hello', id: 0, hello: { version: PROTOCOL_VERSION, role: 'guest', nonce: 'abcdef0123456789', caps: [], maxPayload: 1 << 20 } });
  const [s1, s2] = await socketPair(t);
  const host = new ChannelPeer(s1, { role: 'host', registry: reg });
  t.after(() => host.close());
  s2.write(stale);
  await host.ready;
  const p = host.request('test.echo', { s: 'kept' }, { timeoutMs: 5000 });
  const agent = new ChannelPeer(s2, { role: 'guest', registry: reg, nonce: 'abcdef0123456789', handlers: { 'test.echo': (q: { s: string }) => ({ s: q.s }) } });
  t.after(() => agent.close());
  assert.equal(agent.sessionNonce, 'abcdef0123456789');
  assert.deepEqual(await p, { s: 'kept' });
  assert.equal(host.stats.resets, 0);
  assert.throws(() => new ChannelPeer(s2, { role: 'guest', registry: reg, nonce: 'not hex' }), code('HYLICS_ERR_INVALID_ARGUMENT'));
});
