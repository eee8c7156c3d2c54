// The descriptor copy of socket offload end to end (docs/offload-socket.md, "The descriptor copy"): a real daemon
// (socket-offload-copy auto, the default), a sandbox guest running the example file server, a client network
// namespace behind the host. Bodies byte-exact (sha256) 1 KiB .. 30 MiB, keep-alive after the send, the counters
// (copy fd, no TCP_REPAIR handoff, nothing steered); a hostile app in the guest naming descriptors that are not its
// connection (a file, a Unix socket, a listening TCP socket, a UDP socket, a TCP connection on loopback, a number
// it does not have) or a path outside the share: each refused with a stable code and nothing sent; clients that
// reset mid-send: no descriptor left in hylicsd, the next client served. (A connection in another network namespace
// and a blocking socket: test/os/peer-socket.test.ts; a guest app cannot unshare a netns in its container.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestView } from '../../src/core/api.js';
import { listSteerFlows } from '../../src/os/nft-steer.js';
import { daemonTag } from '../../src/host/wiring.js';
import { hylics, startDaemon, stateDirCli, stopDaemon, tempStateDir } from '../helpers/cli.js';
import { clientNetns } from '../helpers/net-probe.js';
import { fileServerLine, has, socketOffloadSkip, waitForHttp } from '../helpers/socket-offload.js';
import { release } from 'node:os';

// SO_PEERPIDFD is Linux 6.5+
const kernelHasPeerPidfd = (): boolean => {
  const [maj, min] = release().split('.').map(Number);
  return maj! > 6 || (maj === 6 && min! >= 5);
};
const skip = socketOffloadSkip([kernelHasPeerPidfd, 'needs Linux 6.5+ (SO_PEERPIDFD)']);

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

test('socket offload, descriptor copy: sandbox guest, client in another namespace', { skip, timeout: 600_000 }, async (t) => {
  const dir = await tempStateDir('hylics-fdc-');
  const tag = `${process.pid % 100000}`;
  const g = `fc${tag}`;
  const oct = 16 + ((process.pid + 7) % 200);
  const w = clientNetns({ name: `hylics-fcw-${tag}`, hostIf: `hfc${tag}`, hostAddr: `10.252.${oct}.1`, addr: `10.252.${oct}.2` });
  const PORT = 8080;
  let daemon: ChildProcess | undefined = await startDaemon(dir);
  const { withOpts, json } = stateDirCli(dir);
  t.after(async () => {
    if (daemon) { await hylics(withOpts(['guest', 'rm', g])); await stopDaemon(daemon); }
    await w.remove();
    await rm(dir, { recursive: true, force: true });
  });

  const v = await json<GuestView>('guest', 'create', g, '--share-size', '128M', '--memory', '512M');
  const addr = v.address;
  const files: Record<string, Buffer> = {};
  for (const [name, size] of [['1k', 1024], ['64k', 64 * 1024], ['1m', MiB], ['10m', 10 * MiB], ['30m', 30 * MiB]] as const) {
    files[name] = randomBytes(size);
    await writeFile(join(v.share.path, name), files[name]);
  }
  await w.create();
  // every send by the copy here, the large ones too (by default those from FD_COPY_MAX_BYTES take the handoff)
  const ex = await hylics(withOpts(['guest', 'exec', g, '--', 'sh', '-c', fileServerLine(PORT, 'file-server.log', { prefix: 'HYLICS_OFFLOAD_COPY_MAX_BYTES=1073741824 ' })]));
  assert.equal(ex.code, 0, ex.stderr);
  const base = `http://${addr}:${PORT}`;
  const inW = w.exec;
  await waitForHttp(inW, `${base}/1k`, { tries: 100, pauseMs: 200 });
  const show = async (): Promise<GuestView['offload']> => (await json<GuestView>('guest', 'show', g)).offload;

  await t.test('byte-exact bodies 1 KiB .. 30 MiB and a range, all by the descriptor copy', async () => {
    const before = (await show())!.socket;
    for (const name of Object.keys(files)) {
      const r = await inW('curl', ['-sf', `${base}/${name}`]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(sha(r.stdout), sha(files[name]!), `${name} byte-exact`);
    }
    const part = await inW('curl', ['-sf', '-r', '1000-1999999', `${base}/10m`]);
    assert.equal(sha(part.stdout), sha(files['10m']!.subarray(1000, 2_000_000)), 'range');
    const s = (await show())!.socket;
    assert.equal(s.copy, 'auto');
    assert.ok(s.byCopy!.fd - (before.byCopy?.fd ?? 0) >= 6, JSON.stringify(s));
    assert.equal(s.byCopy!.repair, 0, 'no TCP_REPAIR handoff');
    assert.deepEqual(s.fallbacks, {}, 'nothing sent in the guest');
    // nothing was steered: the flow never left the guest
    const flows = await listSteerFlows(g, daemonTag(dir)).catch(() => ({ hold: [], steer: [], back: [] }));
    assert.deepEqual(flows, { hold: [], steer: [], back: [] });
  });

  await t.test('keep-alive: requests on the same connection after each send, headers exact', async () => {
    const heads = join(dir, 'keepalive.h');
    const outs = ['ka-1m', 'ka-10m', 'ka-64k'].map((n) => join(dir, n));
    const r = await inW('curl', ['-sf', '-w', '%{num_connects}\\n', '-D', heads, '-o', outs[0]!, `${base}/1m`, '-o', outs[1]!, `${base}/10m`, '-o', outs[2]!, `${base}/64k`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.toString().trim().split('\n').map(Number), [1, 0, 0], 'one connection for three requests');
    for (const [i, name] of (['1m', '10m', '64k'] as const).entries()) assert.equal(sha(await readFile(outs[i]!)), sha(files[name]!), `${name} byte-exact`);
    const one = (n: number): string =>
      `HTTP/1\\.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${n}\r\nAccept-Ranges: bytes\r\nConnection: keep-alive\r\n\r\n`;
    assert.match(await readFile(heads, 'latin1'), new RegExp(`^${one(MiB)}${one(10 * MiB)}${one(64 * 1024)}$`));
  });

  await t.test('wrk: 16 connections for 5 s, all by the descriptor copy, nothing left in flight', async (st) => {
    if (!has('wrk')) { st.skip('needs wrk'); return; }
    const before = (await show())!.socket;
    const r = await inW('wrk', ['-t2', '-c16', '-d5s', '--timeout', '20s', `${base}/1m`], 60_000);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.toString();
    assert.doesNotMatch(out, /Non-2xx|Socket errors/, out);
    const after = (await show())!.socket;
    assert.ok(after.byCopy!.fd - before.byCopy!.fd >= 16, `${JSON.stringify(after)}\n${out}`);
    assert.equal(after.byCopy!.repair, 0);
    assert.deepEqual(after.fallbacks, before.fallbacks, 'nothing sent in the guest');
    // wrk stops by closing its connections, some mid-response: those sends end at once (EPIPE, ECONNRESET)
    let inFlight = after.inFlight;
    for (let i = 0; i < 50 && inFlight > 0; i++) {
      await new Promise((res) => setTimeout(res, 200));
      inFlight = (await show())!.socket.inFlight;
    }
    assert.equal(inFlight, 0);
  });

  await t.test('a hostile app: descriptors that are not its connection, a path outside the share: refused, nothing sent', async () => {
    const mod = (m: string): string => JSON.stringify(new URL(`../../src/${m}`, import.meta.url).href);
    // the app asks hylicsd directly (its direct offload socket), once per case, then answers the client itself: the
    // client must get exactly the app's own bytes (nothing of the host's)
    const app = `import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { openSync } from 'node:fs';
import { AgentClient } from ${mod('guest/lib.js')};
import { hostOffloadSocket } from ${mod('guest/offload.js')};
const port = Number(process.argv[2]);
const c = await AgentClient.connect({ socket: hostOffloadSocket(), name: 'hostile' });
const fdOf = (h) => h._handle.fd;
const file = openSync('/mnt/hylics/1k', 'r');
const unix = await new Promise((r) => { const s = createServer().listen('/tmp/hostile.sock', () => r(s)); });
const udp = await new Promise((r) => { const s = createSocket('udp4'); s.bind(0, () => r(s)); });
const lo = await new Promise((r) => { const s = createServer((x) => x.resume()).listen(0, '127.0.0.1', () => r(s)); });
const loConn = await new Promise((r) => { const s = connect(lo.address().port, '127.0.0.1', () => r(s)); });
const ask = async (why, fd, path = '1k') => {
  try { const r = await c.request('offload.socket.sendfd', { fd, path, offset: 0 }, { timeoutMs: 10000 }); return why + ' SENT ' + JSON.stringify(r); }
  catch (e) { return why + ' ' + e.code + ' ' + (e.details?.why ?? '') + ' ' + (e.details?.bytesSent === undefined ? 'nothing-sent' : 'bytesSent=' + e.details.bytesSent); }
};
const srv = createServer((s) => s.once('data', async () => {
  const out = [];
  out.push(await ask('file', file));
  out.push(await ask('unix', fdOf(unix)));
  out.push(await ask('listening', fdOf(srv)));
  out.push(await ask('udp', fdOf(udp)));
  out.push(await ask('loopback', fdOf(loConn)));
  out.push(await ask('nofd', 900000));
  out.push(await ask('escape', fdOf(s), '../../../../etc/passwd'));
  out.push(await ask('absolute', fdOf(s), '/etc/passwd'));
  out.push(await ask('missing', fdOf(s), 'no-such-file'));
  console.log(out.join('\\n'));
  s.end('HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\nConnection: close\\r\\n\\r\\nhello');
}));
srv.listen(port, '0.0.0.0', () => console.log('listening'));
`;
    await writeFile(join(v.share.path, 'hostile.mjs'), app);
    const APP_PORT = PORT + 1;
    const ex2 = await hylics(withOpts(['guest', 'exec', g, '--', 'sh', '-c', `${process.execPath} /mnt/hylics/hostile.mjs ${APP_PORT} > /run/hylics/hostile.log 2>&1 &`]));
    assert.equal(ex2.code, 0, ex2.stderr);
    const appLog = (): Promise<string> => readFile(join(dir, 'guests', g, 'run', 'hostile.log'), 'utf8').catch(() => '');
    for (let i = 0; i < 100 && !/listening/.test(await appLog()); i++) await new Promise((res) => setTimeout(res, 200));
    assert.match(await appLog(), /listening/);
    const r = await inW('curl', ['-s', '-D', '-', `http://${addr}:${APP_PORT}/x`], 60_000);
    assert.equal(r.stdout.toString(), 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello', 'only the app\'s own bytes');
    const log = await appLog();
    const want: Record<string, RegExp> = {
      file: /^file HYLICS_ERR_OFFLOAD_FD_REFUSED not-socket nothing-sent$/m,
      unix: /^unix HYLICS_ERR_OFFLOAD_FD_REFUSED not-ipv4 nothing-sent$/m,
      listening: /^listening HYLICS_ERR_OFFLOAD_FD_REFUSED not-connected nothing-sent$/m,
      udp: /^udp HYLICS_ERR_OFFLOAD_FD_REFUSED not-tcp nothing-sent$/m,
      loopback: /^loopback HYLICS_ERR_OFFLOAD_FD_REFUSED not-guest-addr nothing-sent$/m,
      nofd: /^nofd HYLICS_ERR_OFFLOAD_FD_REFUSED no-such-fd nothing-sent$/m,
      escape: /^escape HYLICS_ERR_PATH_ESCAPE +nothing-sent$/m,
      absolute: /^absolute HYLICS_ERR_PATH_ESCAPE +nothing-sent$/m,
      missing: /^missing HYLICS_ERR_FILE_NOT_FOUND +nothing-sent$/m,
    };
    for (const [k, re] of Object.entries(want)) assert.match(log, re, `${k}\n${log}`);
    const s = (await show())!.socket;
    for (const why of ['not-socket', 'not-ipv4', 'not-connected', 'not-tcp', 'not-guest-addr', 'no-such-fd']) assert.ok((s.fdRefused?.[why] ?? 0) >= 1, `${why} counted: ${JSON.stringify(s.fdRefused)}`);
    assert.equal(s.inFlight, 0);
  });

  await t.test('clients that reset mid-send: no descriptor left in hylicsd, no hang, the next client served', async () => {
    const pid = daemon!.pid!;
    // warm: the connections the guest's file server keeps to hylicsd are open already
    await inW('curl', ['-sf', '-o', '/dev/null', `${base}/64k`]);
    const before = fdCount(pid);
    for (let i = 0; i < 4; i++) {
      const r = await inW('sh', ['-c', `curl -s ${base}/30m | head -c 2000000 > /dev/null; echo done`], 120_000);
      assert.match(r.stdout.toString(), /done/);
    }
    const ok = await inW('curl', ['-sf', `${base}/1m`]);
    assert.equal(sha(ok.stdout), sha(files['1m']!), 'the next client is served');
    let now = fdCount(pid);
    for (let i = 0; i < 50 && now > before; i++) {
      await new Promise((res) => setTimeout(res, 200));
      now = fdCount(pid);
    }
    assert.ok(now <= before, `hylicsd had ${before} descriptors before, ${now} after`);
    const s = (await show())!.socket;
    assert.equal(s.inFlight, 0);
    assert.equal(s.byCopy!.repair, 0);
  });

  await hylics(withOpts(['guest', 'rm', g]));
  await stopDaemon(daemon);
  daemon = undefined;
});
