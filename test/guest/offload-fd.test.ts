// The agent's offload socket (src/guest/offload-fd.ts) on loopback with a stand-in for the host's ops: an app passes
// its TCP socket with SCM_RIGHTS; the agent freezes it, "the host" hands the state back, the agent restores it on
// the very socket passed, and the connection carries on both ways (the end to end run with the real daemon is
// test/host/socket-fd.test.ts). Fallbacks send the file from the guest on the app's socket; bad requests get a
// stable code and change nothing. The CLI for apps without SCM_RIGHTS (`hylics offload sendfile --fd N`) with its
// --head-file: the head travels in the handoff, or is written by the agent first on a fallback; too big: refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_HANDOFF_HEAD_BYTES } from '../../src/core/protocol/index.js';
import { serveOffloadFd } from '../../src/guest/offload-fd.js';
import { sendWithFd, socketFd, tcpRepairAvailable } from '../../src/os/tcp-repair.js';
import { hylics, type CliResult } from '../helpers/cli.js';

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

/** `hylics offload sendfile --fd 3 ARGS` with `fd` inherited as its fd 3 (as an app's subprocess would). */
const cliSendfile = (args: string[], fd: number, input?: string): Promise<CliResult> =>
  hylics(['offload', 'sendfile', '--fd', '3', ...args], { fds: [fd], ...(input !== undefined ? { input } : {}) });

test('offload socket: fd passed with SCM_RIGHTS, restored in place; fallbacks; bad requests', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hylics-offfd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'f'), 'file-bytes');
  const ops: string[] = [];
  const heads: Array<string | undefined> = [];
  const host = async (op: string, p: unknown): Promise<unknown> => {
    ops.push(op);
    if (op === 'offload.socket.handoff') heads.push((p as { head?: string }).head);
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

  await t.test('the CLI\'s --head-file: the head in the handoff; over MAX_HANDOFF_HEAD_BYTES or unreadable: refused, nothing asked', async () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n';
    writeFileSync(join(dir, 'head'), head);
    heads.length = 0; // the earlier handoffs' (none had a head)
    app.pause(); // the app leaves its socket alone until the answer
    const r = await cliSendfile(['--socket', sock, '--head-file', join(dir, 'head'), 'f'], socketFd(app)!);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { bytes: 0, by: 'host' });
    assert.deepEqual(ops.splice(0), ['offload.socket.handoff']);
    assert.deepEqual(heads.splice(0), [Buffer.from(head).toString('base64')], 'the head as the request\'s base64');
    app.resume();
    const got = once(app);
    client.write('after');
    assert.equal(await got, 'after', 'restored in place, carries on');

    writeFileSync(join(dir, 'big-head'), Buffer.alloc(MAX_HANDOFF_HEAD_BYTES + 1, 'h'));
    const big = await cliSendfile(['--socket', sock, '--head-file', join(dir, 'big-head'), 'f'], socketFd(app)!);
    assert.equal(big.code, 2, 'a bad argument\'s exit code');
    assert.match(big.stderr, new RegExp(`error HYLICS_ERR_INVALID_ARGUMENT: --head-file .* over ${MAX_HANDOFF_HEAD_BYTES} bytes`), big.stderr);
    const missing = await cliSendfile(['--socket', sock, '--head-file', join(dir, 'no-such-head'), 'f'], socketFd(app)!);
    assert.match(missing.stderr, /error HYLICS_ERR_INVALID_ARGUMENT: --head-file .*ENOENT/, missing.stderr);
    // exactly the limit is taken
    writeFileSync(join(dir, 'max-head'), Buffer.alloc(MAX_HANDOFF_HEAD_BYTES, 'm'));
    app.pause();
    const max = await cliSendfile(['--socket', sock, '--head-file', join(dir, 'max-head'), 'f'], socketFd(app)!);
    assert.equal(max.code, 0, max.stderr);
    app.resume();
    assert.deepEqual(ops.splice(0), ['offload.socket.handoff'], 'only the one within the limit reached the host');
    assert.equal(Buffer.from(heads.splice(0)[0]!, 'base64').length, MAX_HANDOFF_HEAD_BYTES);
    const still = once(app);
    client.write('still');
    assert.equal(await still, 'still');
  });

  await t.test('the CLI\'s --head-file - (stdin), the send kept in the guest: the agent writes the head, then the file', async () => {
    const out = join(tmpdir(), `hylics-offfd-cli-${process.pid}`);
    writeFileSync(out, 'outside');
    t.after(() => rmSync(out, { force: true }));
    const chunks: string[] = [];
    const onData = (d: Buffer): void => { chunks.push(d.toString()); };
    client.on('data', onData);
    const r = await cliSendfile(['--socket', sock, '--head-file', '-', out], socketFd(app)!, 'HEAD\r\n');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { bytes: 7, by: 'guest', reason: 'outside-share' });
    for (let i = 0; i < 100 && chunks.join('').length < 13; i++) await new Promise((res) => setTimeout(res, 20));
    client.off('data', onData);
    assert.equal(chunks.join(''), 'HEAD\r\noutside', 'the head first, then the file');
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(ops.splice(0), ['offload.socket.fallback']);
  });
});
