// Socket offload end to end (docs/offload-socket.md): a real daemon, a sandbox guest running the example file
// server with --offload socket, and a client network namespace behind the host (client netns - host - guest).
// curl and wrk from the client namespace, curl on the host itself; bodies byte-exact (sha256) from 1 KiB to
// 200 MiB; a second request on the same keep-alive connection after the hand-back; concurrent and sequential
// handoffs with nothing left over (steering sets empty, no host sockets or kernel orphans on the guest's address);
// the guest's steering table with its frozen-socket drop rules there before the first handoff;
// no RST from the guest's address in a capture on the client side; faults: a file outside the share, a client that
// resets mid-send.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestView } from '../../src/core/api.js';
import { run, runRaw } from '../../src/os/exec.js';
import { CLOSE_MAX_MS, LINGER_MS } from '../../src/host/offload/socket.js';
import { listSteerFlows, steerTableName } from '../../src/os/nft-steer.js';
import { daemonTag } from '../../src/host/wiring.js';
import { hylics, startDaemon, stateDirCli, stopDaemon, tempStateDir } from '../helpers/cli.js';
import { clientNetns } from '../helpers/net-probe.js';
import { fileServerLine, has, rstsInCapture, socketOffloadSkip, waitForHttp, waitLeftOver } from '../helpers/socket-offload.js';

const skip = socketOffloadSkip();

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('socket offload: example file server in a sandbox guest, client in another namespace', { skip, timeout: 900_000 }, async (t) => {
  const dir = await tempStateDir('hylics-sock-');
  const tag = `${process.pid % 100000}`;
  const g = `so${tag}`;
  const oct = 16 + (process.pid % 200);
  const w = clientNetns({ name: `hylics-sow-${tag}`, hostIf: `hso${tag}`, hostAddr: `10.253.${oct}.1`, addr: `10.253.${oct}.2` });
  const PORT = 8080;
  let daemon: ChildProcess | undefined = await startDaemon(dir, ['--socket-offload-copy', 'repair']); // the TCP_REPAIR handoff (the descriptor copy: socket-fdcopy.test.ts)
  let capture: ChildProcess | undefined;
  const { withOpts, json } = stateDirCli(dir);
  t.after(async () => {
    capture?.kill('SIGKILL');
    if (daemon) { await hylics(withOpts(['guest', 'rm', g])); await stopDaemon(daemon); }
    await w.remove();
    await rm(dir, { recursive: true, force: true });
  });

  const v = await json<GuestView>('guest', 'create', g, '--share-size', '260M', '--memory', '512M');
  const addr = v.address;
  // files in the share (the host path of the guest's tmpfs)
  const files: Record<string, Buffer> = {};
  for (const [name, size] of [['1k', 1024], ['64k', 64 * 1024], ['1m', MiB], ['10m', 10 * MiB], ['30m', 30 * MiB]] as const) {
    files[name] = randomBytes(size);
    await writeFile(join(v.share.path, name), files[name]);
  }
  // 200 MiB: written in chunks, hashed as written
  const bigHash = createHash('sha256');
  await new Promise<void>((res, rej) => {
    const ws = createWriteStream(join(v.share.path, '200m'));
    ws.on('error', rej);
    let left = 200;
    const next = (): void => {
      while (left > 0) {
        const c = randomBytes(MiB);
        bigHash.update(c);
        left--;
        if (!ws.write(c)) { ws.once('drain', next); return; }
      }
      ws.end(res);
    };
    next();
  });
  const bigSha = bigHash.digest('hex');

  // the client namespace, routed through the host
  await w.create();

  // the example server inside the guest, through the agent (the guest's cgroup, namespaces and capabilities)
  // with the guest library's per-handoff trace lines in its log (HYLICS_OFFLOAD_TRACE: checked for terminal mode below)
  const ex = await hylics(withOpts(['guest', 'exec', g, '--', 'sh', '-c', fileServerLine(PORT, 'file-server.log', { prefix: 'HYLICS_OFFLOAD_TRACE=1 ' })]));
  assert.equal(ex.code, 0, ex.stderr);
  // the agent is connected (it ran the command): the guest's steering table, with the rules that drop its frozen
  // sockets' packets (DSCP 57), is made then, before its first handoff's freeze (made in the background: polled)
  let steering = '';
  for (let i = 0; i < 300 && !/ip dscp 0x39/.test(steering); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    steering = (await runRaw('nft', ['list', 'table', 'ip', steerTableName(g, daemonTag(dir))])).stdout;
  }
  assert.equal(steering.match(new RegExp(`ip saddr ${addr.replace(/\./g, '\\.')} ip dscp 0x39 counter`, 'g'))?.length, 2, steering);
  assert.equal((await json<GuestView>('guest', 'show', g)).offload!.socket.handoffs, 0, 'before any handoff');
  const base = `http://${addr}:${PORT}`;
  const inW = w.exec;
  await waitForHttp(inW, `${base}/1k`, { tries: 100, pauseMs: 200 });
  // capture RSTs seen on the client side for the rest of the test (tcpdump when installed)
  const rstFile = join(dir, 'rst.txt');
  if (has('tcpdump')) {
    capture = w.captureCloses(addr, rstFile);
    await new Promise((r) => setTimeout(r, 1000));
  }

  await t.test('byte-exact bodies 1 KiB .. 200 MiB, and Range', async () => {
    for (const name of Object.keys(files)) {
      const r = await inW('curl', ['-sf', `${base}/${name}`]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(sha(r.stdout), sha(files[name]!), `${name} byte-exact`);
    }
    const big = await inW('sh', ['-c', `curl -sf ${base}/200m | sha256sum`], 300_000);
    assert.equal(big.code, 0, big.stderr);
    assert.equal(big.stdout.toString().split(' ')[0], bigSha, '200 MiB byte-exact');
    const part = await inW('curl', ['-sf', '-r', '1000-1999999', `${base}/10m`]);
    assert.equal(sha(part.stdout), sha(files['10m']!.subarray(1000, 2_000_000)), 'range');
  });

  await t.test('keep-alive: requests on the same connection after each hand-back', async () => {
    // the example server's headers travel in each handoff (head) and the host sends them with the body: the raw
    // headers (-D, all three responses in order) are exactly the server's
    const heads = join(dir, 'keepalive.h');
    const outs = ['ka-1m', 'ka-10m', 'ka-64k'].map((n) => join(dir, n));
    const r = await inW('curl', ['-sf', '-w', '%{num_connects}\\n', '-D', heads, '-o', outs[0]!, `${base}/1m`, '-o', outs[1]!, `${base}/10m`, '-o', outs[2]!, `${base}/64k`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.toString().trim().split('\n').map(Number), [1, 0, 0], 'one connection for three requests');
    const { readFile } = await import('node:fs/promises');
    for (const [i, name] of (['1m', '10m', '64k'] as const).entries()) assert.equal(sha(await readFile(outs[i]!)), sha(files[name]!), `${name} byte-exact`);
    const one = (n: number): string =>
      `HTTP/1\\.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${n}\r\nAccept-Ranges: bytes\r\nConnection: keep-alive\r\n\r\n`;
    const h = await readFile(heads, 'latin1');
    assert.match(h, new RegExp(`^${one(MiB)}${one(10 * MiB)}${one(64 * 1024)}$`), JSON.stringify(h));
    // and the counters saw host sends
    const s = (await json<GuestView>('guest', 'show', g)).offload!.socket;
    assert.ok(s.available, s.reason);
    assert.ok(s.handoffs >= 9, `handoffs ${s.handoffs}`);
    assert.ok(s.bytes >= 200 * MiB, `bytes ${s.bytes}`);
    assert.ok(s.latencyMs.p50 !== null && s.latencyMs.p99 !== null);
  });

  await t.test('terminal mode (Connection: close): byte-exact, the host finishes the connection; a trace line for it', async () => {
    const before = (await json<GuestView>('guest', 'show', g)).offload!.socket.handoffs;
    const out = join(dir, 'close-1m');
    const r = await inW('curl', ['-sf', '-H', 'Connection: close', '-w', '%{local_port}', '-o', out, `${base}/1m`]);
    assert.equal(r.code, 0, r.stderr);
    const { readFile } = await import('node:fs/promises');
    assert.equal(sha(await readFile(out)), sha(files['1m']!), 'byte-exact');
    assert.ok((await json<GuestView>('guest', 'show', g)).offload!.socket.handoffs > before, 'handed over');
    // the guest's line for this handoff, in the format of the others (docs/offload-socket.md): no restore step.
    // The host finishes the connection before it answers the guest, so the client can be done first: wait for it
    const port = Number(r.stdout.toString().trim());
    let log = '';
    let line: string | undefined;
    for (let i = 0; i < 100 && line === undefined; i++) {
      if (i > 0) await new Promise((res) => setTimeout(res, 200));
      log = await readFile(join(dir, 'guests', g, 'run', 'file-server.log'), 'utf8');
      line = log.split('\n').find((l) => l.includes(` port ${port}: `));
    }
    assert.match(line ?? '', /^hylics offload: at \d+ port \d+: quiesce [\d.]+, freeze [\d.]+, handoff [\d.]+, done [\d.]+ \(total [\d.]+ ms\)$/, log.slice(-2000));
  });

  await t.test('a client on the host itself: byte-exact, keep-alive after the hand-back', async () => {
    // the host's own packets take the output path (marked in the steering table's output chain) and the host
    // socket's replies loop back over lo through prerouting, where the guest's packets of a steered flow are dropped
    const before = (await json<GuestView>('guest', 'show', g)).offload!.socket.handoffs;
    const out = [join(dir, 'host-1m'), join(dir, 'host-10m'), join(dir, 'host-64k')];
    const r = await run('curl', ['-sf', '--max-time', '120', '-w', '%{num_connects}\\n', '-o', out[0]!, `${base}/1m`, '-o', out[1]!, `${base}/10m`, '-o', out[2]!, `${base}/64k`], { timeoutMs: 150_000 }).catch((e: Error) => e);
    assert.ok(!(r instanceof Error), `curl on the host: ${String(r)}`);
    assert.deepEqual(r.stdout.trim().split('\n').map(Number), [1, 0, 0], 'one connection for three requests');
    const { readFile } = await import('node:fs/promises');
    for (const [i, name] of (['1m', '10m', '64k'] as const).entries()) assert.equal(sha(await readFile(out[i]!)), sha(files[name]!), `${name} byte-exact`);
    const after = (await json<GuestView>('guest', 'show', g)).offload!.socket.handoffs;
    assert.ok(after - before >= 3, `handed over: ${after - before}`);
  });

  await t.test('wrk: 16 connections for 5 s, all through handoffs, nothing left over', async (st) => {
    if (!has('wrk')) { st.skip('needs wrk'); return; }
    const before = (await json<GuestView>('guest', 'show', g)).offload!.socket;
    const r = await inW('wrk', ['-t2', '-c16', '-d5s', '--timeout', '20s', `${base}/1m`], 60_000);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.toString();
    assert.doesNotMatch(out, /Non-2xx|Socket errors/, out);
    const after = (await json<GuestView>('guest', 'show', g)).offload!.socket;
    assert.ok(after.handoffs - before.handoffs >= 16, `handoffs ${after.handoffs - before.handoffs}\n${out}`);
    // under a loaded CI host a socket may miss the quiesce deadline (then the guest sends it); nothing else may fall
    // back
    const why = async (): Promise<string> => {
      const { readFile } = await import('node:fs/promises');
      const fsLog = await readFile(join(dir, 'guests', g, 'run', 'file-server.log'), 'utf8').catch(() => '');
      return fsLog.split('\n').filter((l) => /sent in the guest|failed/.test(l)).slice(-10).join('\n');
    };
    for (const [reason, n] of Object.entries(after.fallbacks)) if (reason !== 'not-quiescent') assert.equal(n, before.fallbacks[reason] ?? 0, `fallbacks ${reason}\n${await why()}`);
  });

  await t.test('100 concurrent and 1000 sequential handoffs leave no flow, socket or orphan behind', async (st) => {
    const urls = Array.from({ length: 100 }, () => `${base}/64k`);
    // status, total and connect time of each request (a rare ~60 s stall: a connect time near 63 s would be a SYN
    // dropped until its sixth retry)
    const fmt = '%{http_code} %{time_total} %{time_connect}\\n';
    const conc = await inW('curl', ['-sf', '--parallel', '--parallel-max', '100', '--parallel-immediate', ...urls.flatMap((u) => ['-o', '/dev/null', '-w', fmt, u])], 120_000);
    assert.equal(conc.code, 0, conc.stderr);
    const concTimes = conc.stdout.toString().trim().split('\n').map((l) => Number(l.split(' ')[1]));
    st.diagnostic(`concurrent: slowest ${Math.max(...concTimes).toFixed(3)} s`);
    const seq = Array.from({ length: 1000 }, () => `${base}/1k`);
    const before = (await json<GuestView>('guest', 'show', g)).offload!.socket.handoffs;
    // every status and time, so a failure says which requests failed and when (curl's exit code is the last one's)
    const r = await inW('curl', ['-sS', ...seq.flatMap((u) => ['-o', '/dev/null', '-w', fmt, u])], 480_000); // load 20+: 0.3 s each
    const codes = r.stdout.toString().trim().split('\n');
    const bad = codes.map((l, i) => `${i}: ${l}`).filter((l) => !/: 200 /.test(l));
    const slow = codes.map((l, i) => `${i}: ${l}`).filter((_, i) => Number(codes[i]!.split(' ')[1]) > 1);
    const serverLog = async (): Promise<string> => {
      const { readFile } = await import('node:fs/promises');
      const fsLog = (await readFile(join(dir, 'guests', g, 'run', 'file-server.log'), 'utf8').catch(() => '')).split('\n').slice(-20);
      // hylicsd's warnings and errors (pino level >= 40), not its per-handoff debug lines
      const warns = (await readFile(join(dir, 'hylicsd.log'), 'utf8').catch(() => '')).split('\n').filter((l) => /"level":[456]0/.test(l)).slice(-15);
      // the guest's connections by TCP state (CLOSE-WAIT: FINs that reached the guest and the app did not act on)
      const ss = await hylics(withOpts(['guest', 'exec', g, '--', 'ss', '-tanH']));
      const states = ss.stdout.split('\n').map((l) => l.split(/\s+/)[0]).filter(Boolean).reduce<Record<string, number>>((m, x) => ({ ...m, [x!]: (m[x!] ?? 0) + 1 }), {});
      return ['file server:', ...fsLog, 'hylicsd warnings:', ...warns, `guest TCP states: ${JSON.stringify(states)}`].join('\n');
    };
    if (r.code !== 0 || bad.length > 0) assert.fail(`curl exit ${r.code}: ${bad.length} of ${codes.length} not 200 (first ${bad.slice(0, 5).join(', ')}; slow ${slow.slice(0, 5).join(', ')})\n${r.stderr.slice(-2000)}\n${await serverLog()}`);
    // not a timing assertion: the slowest requests, in the report (a rare ~60 s stall was seen once in CI and locally)
    const times = codes.map((l) => Number(l.split(' ')[1]));
    st.diagnostic(`sequential: ${slow.length} of ${codes.length} requests over 1 s, slowest ${Math.max(...times).toFixed(3)} s`);
    const handed = (await json<GuestView>('guest', 'show', g)).offload!.socket.handoffs - before;
    assert.ok(handed >= 1000, `${handed} handoffs for 1000 requests (slow: ${slow.slice(0, 5).join(', ')})\n${await serverLog()}`);
    // the host keeps a flow steered until its socket has closed (at most CLOSE_MAX_MS, then it drops the socket
    // leaving nothing), plus LINGER_MS: wait for that, then nothing may be left, no kernel orphan either (a socket
    // without a process: FIN-WAIT-1 towards a wrk client that vanished mid-body would retransmit from the guest's
    // address for minutes, its client's answers going to the guest)
    const left = await waitLeftOver(g, dir, addr, CLOSE_MAX_MS + LINGER_MS + 10_000);
    assert.deepEqual(left.flows, { hold: [], steer: [], back: [] }, 'no flow left in the steering sets');
    assert.deepEqual(left.socks.filter((l) => /users:\(/.test(l)), [], 'no host socket on the guest\'s address');
    assert.deepEqual(left.socks.filter((l) => !/users:\(/.test(l)), [], 'no kernel orphan on the guest\'s address');
    const s = (await json<GuestView>('guest', 'show', g)).offload!.socket;
    assert.equal(s.inFlight, 0);
  });

  await t.test('a hand-back the guest cannot restore: release { finish: true } finishes it from the kept state (whole range, then FIN)', async () => {
    // an app in the guest that runs the guest library's own handoff (handoffQuiesced, autoRelease) but gets a state it
    // cannot restore (its answer's localAddr spoiled on the way in): the library asks the host for release { finish:
    // true }, the host restores its kept copy of the connection and sends the range's tail, then FIN
    const body = randomBytes(3 * MiB + 123);
    await writeFile(join(v.share.path, 'rf'), body);
    const mod = (m: string): string => JSON.stringify(new URL(`../../src/${m}`, import.meta.url).href);
    const app = `import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { AgentClient, defaultAgentSocket } from ${mod('guest/lib.js')};
import { handoffQuiesced, hostOffloadSocket } from ${mod('guest/offload.js')};
import { quiesce } from ${mod('os/tcp-repair.js')};
const [port, size] = process.argv.slice(2).map(Number);
const direct = hostOffloadSocket();
const c = await AgentClient.connect({ socket: direct && existsSync(direct) ? direct : defaultAgentSocket(), name: 'release-finish' });
const plain = (a) => a.replace(/^::ffff:/, '');
createServer((s) => s.once('data', async () => {
  s.write('HTTP/1.1 200 OK\\r\\nContent-Length: ' + size + '\\r\\nConnection: keep-alive\\r\\n\\r\\n');
  const q = await quiesce(s, 2000, 65536);
  const call = async (op, p, o) => {
    const r = await c.request(op, p, o);
    if (op === 'offload.socket.handoff' && r.state) r.state = { ...r.state, localAddr: 'not-an-address' };
    if (op === 'offload.socket.release') console.log('release ' + JSON.stringify(p) + ' -> ' + JSON.stringify(r));
    return r;
  };
  const flow = { localAddr: plain(s.localAddress), localPort: s.localPort, remoteAddr: plain(s.remoteAddress), remotePort: s.remotePort };
  try {
    const r = await handoffQuiesced(q.fd, { ...flow, path: 'rf', offset: 0, count: size, mode: 'return' }, call, { inPlace: true });
    console.log('unexpected outcome ' + r.outcome);
  } catch (e) { console.log('handoff lost: ' + e.code + ': ' + e.message); }
  s.destroy();
})).listen(port, '0.0.0.0', () => console.log('listening'));
`;
    await writeFile(join(v.share.path, 'rf-app.mjs'), app);
    const APP_PORT = PORT + 1;
    const ex2 = await hylics(withOpts(['guest', 'exec', g, '--', 'sh', '-c', `${process.execPath} /mnt/hylics/rf-app.mjs ${APP_PORT} ${body.length} > /run/hylics/rf.log 2>&1 &`]));
    assert.equal(ex2.code, 0, ex2.stderr);
    const { readFile } = await import('node:fs/promises');
    const appLog = (): Promise<string> => readFile(join(dir, 'guests', g, 'run', 'rf.log'), 'utf8').catch(() => '');
    for (let i = 0; i < 100 && !/listening/.test(await appLog()); i++) await new Promise((res) => setTimeout(res, 200));
    assert.match(await appLog(), /listening/);
    // the client reads until the connection ends: FIN (recv gives b''), or an RST (ConnectionResetError)
    const client = `import socket, sys, hashlib
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
s.sendall(b'GET /rf HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
buf = b''
try:
    while True:
        d = s.recv(1 << 20)
        if not d:
            end = 'FIN'
            break
        buf += d
except ConnectionResetError:
    end = 'RST'
except socket.timeout:
    end = 'TIMEOUT'
head, _, body = buf.partition(b'\\r\\n\\r\\n')
print(end, len(body), hashlib.sha256(body).hexdigest())`;
    const r = await inW('python3', ['-c', client, addr, String(APP_PORT)], 120_000);
    assert.equal(r.code, 0, r.stderr.toString());
    const log = await appLog();
    assert.deepEqual(r.stdout.toString().trim().split(' '), ['FIN', String(body.length), sha(body)], log);
    // the app saw the handoff lost, after the library's release with finish found the host's kept state (released:
    // true; a state the host had dropped, after RETURNED_KEEP_MS, answers false and the host finishes on its own)
    for (let i = 0; i < 50 && !/handoff lost/.test(await appLog()); i++) await new Promise((res) => setTimeout(res, 200));
    assert.match(await appLog(), /release \{"handoff":"[^"]+","finish":true\} -> \{"released":true\}\nhandoff lost: HYLICS_ERR_INVALID_ARGUMENT/);
    // and nothing of it stays: the steering sets empty, no host socket on the guest's address
    const left = await waitLeftOver(g, dir, addr, CLOSE_MAX_MS + LINGER_MS + 10_000);
    assert.deepEqual(left.flows, { hold: [], steer: [], back: [] }, 'no flow left in the steering sets');
    assert.deepEqual(left.socks, [], 'no host socket or orphan on the guest\'s address');
  });

  await t.test('faults: client reset mid-send; the next client is served', async () => {
    // curl gives up after 2 MB of 200 MiB: the client closes with unread data (RST from the client)
    const r = await inW('sh', ['-c', `curl -s --max-filesize 1 -o /dev/null ${base}/200m; curl -s ${base}/200m | head -c 2000000 > /dev/null; echo done`], 120_000);
    assert.match(r.stdout.toString(), /done/);
    await new Promise((res) => setTimeout(res, 2500));
    // written again first: the guest's tiered store moves files idle for 60 s out of the share, and the host's
    // sends are not the guest's use (the subtests before can take longer than that on a loaded machine)
    await writeFile(join(v.share.path, '1m'), files['1m']!);
    const ok = await inW('curl', ['-sf', `${base}/1m`]);
    assert.equal(sha(ok.stdout), sha(files['1m']!));
    // the client has its bytes before the hand-back's release (or a reset flow's linger) ends: wait for them
    let flows = await listSteerFlows(g, daemonTag(dir));
    for (let i = 0; i < 25 && (flows.hold.length > 0 || flows.steer.length > 0 || flows.back.length > 0); i++) {
      await new Promise((res) => setTimeout(res, 200));
      flows = await listSteerFlows(g, daemonTag(dir));
    }
    assert.deepEqual(flows, { hold: [], steer: [], back: [] });
  });

  await t.test('no RST from the guest\'s address reached the client', async (st) => {
    if (!capture) { st.skip('needs tcpdump'); return; }
    await new Promise((res) => setTimeout(res, 500));
    // a client that reset mid-send (previous subtest) is answered by nothing: the host closed its own socket. An RST
    // to a client port that had already sent its FIN or RST is counted apart: wrk stops by closing all its
    // connections at once, some in the middle of a response, and the guest's answer to a closed socket cannot reach
    // the client's program (seen in fresh-clone runs only, never alone; docs/offload-socket.md "Not done yet")
    const { seen, afterClose } = await rstsInCapture(rstFile, addr);
    if (afterClose.length > 0) st.diagnostic(`RSTs to clients that had already closed: ${afterClose.length}\n${afterClose.join('\n')}`);
    assert.equal(seen.join('\n'), '', `RSTs from ${addr} to a client that had not closed:\n${seen.join('\n')}`);
  });

  // removing the guest removes its steering table
  await hylics(withOpts(['guest', 'rm', g]));
  const left = await runRaw('nft', ['list', 'table', 'ip', steerTableName(g, daemonTag(dir))]);
  assert.notEqual(left.code, 0, 'steering table removed with the guest');
  await stopDaemon(daemon);
  daemon = undefined;
});
