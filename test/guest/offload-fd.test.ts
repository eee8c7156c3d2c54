// The agent's offload socket (src/guest/offload-fd.ts) on loopback with a stand-in for the host's ops: an app passes
// its TCP socket with SCM_RIGHTS; the agent freezes it, "the host" hands the state back, the agent restores it on
// the very socket passed, and the connection carries on both ways (the end to end run with the real daemon is
// test/host/socket-fd.test.ts). Fallbacks send the file from the guest on the app's socket; bad requests get a
// stable code and change nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveOffloadFd } from '../../src/guest/offload-fd.js';
import { sendWithFd, socketFd, tcpRepairAvailable } from '../../src/os/tcp-repair.js';

const skip = process.getuid?.() !== 0 ? 'needs root (TCP_REPAIR)' : !tcpRepairAvailable().ok ? `native addon: ${tcpRepairAvailable().reason}` : false;

/** Send `msg` with `fd` attached (or plain bytes when fd is undefined); resolves with the agent's JSON answer. */
function ask(path: string, msg: string, fd?: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = createConnection({ path });
    let buf = '';
    c.on('error', reject);
    c.on('connect', () => { if (fd === undefined) c.write(msg); else sendWithFd(socketFd(c as Socket)!, Buffer.from(msg), fd); });
    c.on('data', (d) => { buf += d.toString(); });
    c.on('end', () => resolve(JSON.parse(buf) as Record<string, unknown>));
  });
}

const once = (s: Socket): Promise<string> => new Promise((r) => s.once('data', (d) => r(d.toString())));

test('offload socket: fd passed with SCM_RIGHTS, restored in place; fallbacks; bad requests', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hylics-offfd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'f'), 'file-bytes');
  const ops: string[] = [];
  const host = async (op: string, p: unknown): Promise<unknown> => {
    ops.push(op);
    // the host hands the connection back as it got it (an empty range, nothing sent): the guest restores it
    if (op === 'offload.socket.handoff') return { handoff: 'h1', count: 0, bytes: 0, outcome: 'returned', state: (p as { state: unknown }).state };
    if (op === 'offload.socket.release') return { released: true };
    return { counted: true };
  };
  const sock = join(dir, 'offload.sock');
  const srv = await serveOffloadFd(sock, dir, host, () => undefined);
  t.after(() => srv.close());

  // a TCP connection on loopback: `app` is the server side whose fd is passed
  const listener = createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  t.after(() => listener.close());
  const appP = new Promise<Socket>((r) => listener.once('connection', r));
  const client = createConnection({ port: (listener.address() as { port: number }).port, host: '127.0.0.1' });
  const app = await appP;
  app.pause();
  t.after(() => { client.destroy(); app.destroy(); });

  await t.test('handoff: the connection carries on, on the same socket, both ways', async () => {
    const r = await ask(sock, JSON.stringify({ path: 'f' }), socketFd(app)!);
    assert.deepEqual(r, { ok: true, bytes: 0, by: 'host' });
    // autoRelease: no release after a restored hand-back
    assert.deepEqual(ops.splice(0), ['offload.socket.handoff']);
    app.resume();
    const got = once(app);
    client.write('ping');
    assert.equal(await got, 'ping');
    const back = once(client);
    app.write('pong');
    assert.equal(await back, 'pong');
  });

  await t.test('outside the share: sent in the guest on the app\'s socket, reason counted', async () => {
    writeFileSync(join(tmpdir(), `hylics-offfd-out-${process.pid}`), 'outside');
    const got = once(client);
    const r = await ask(sock, JSON.stringify({ path: join(tmpdir(), `hylics-offfd-out-${process.pid}`) }), socketFd(app)!);
    rmSync(join(tmpdir(), `hylics-offfd-out-${process.pid}`));
    assert.deepEqual(r, { ok: true, bytes: 7, by: 'guest', reason: 'outside-share' });
    assert.equal(await got, 'outside');
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(ops.splice(0), ['offload.socket.fallback']);
  });

  await t.test('bad requests: no fd, not JSON, unknown field, bad offset; nothing asked of the host', async () => {
    const code = (r: Record<string, unknown>): unknown => (r.error as { code?: string } | undefined)?.code;
    assert.equal(code(await ask(sock, JSON.stringify({ path: 'f' }))), 'HYLICS_ERR_INVALID_ARGUMENT', 'no fd');
    assert.equal(code(await ask(sock, 'nope', socketFd(app)!)), 'HYLICS_ERR_INVALID_ARGUMENT', 'not JSON');
    assert.equal(code(await ask(sock, JSON.stringify({ path: 'f', x: 1 }), socketFd(app)!)), 'HYLICS_ERR_INVALID_ARGUMENT', 'unknown field');
    assert.equal(code(await ask(sock, JSON.stringify({ path: 'f', offset: -1 }), socketFd(app)!)), 'HYLICS_ERR_INVALID_ARGUMENT', 'offset');
    assert.deepEqual(ops, []);
    // the connection is untouched
    const got = once(app);
    client.write('still');
    assert.equal(await got, 'still');
  });
});
