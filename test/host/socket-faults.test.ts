// Socket offload faults end to end (docs/offload-socket.md, "Faults"; issue #10 item 4): a real daemon, a sandbox
// guest running the example file server with --offload socket, a client network namespace behind the host, and a
// packet capture on the client's link for the whole run. Each fault: what the app and the client see, and that
// nothing leaks (steering sets empty, no host socket on the guest's address, no frozen socket left in the guest):
//   - the host refuses by budget (file bytes in flight per guest): the guest sends, head (the response headers the
//     server passed in the handoff) and body, reason `budget`, and the next request on the connection is handed over;
//   - the app has no CAP_NET_ADMIN, or no TCP_REPAIR (no addon): the guest sends, with the reason; keep-alive goes on;
//   - the client resets mid-send (killed), or vanishes (its packets dropped, then killed): the app gets PEER_CLOSED;
//   - the daemon is killed during a send: the app gets a clear error, the client a truncated body ended by FIN;
//     the restarted daemon removes the steering the dead one left, and the next handoff works;
//   - the app is killed during a send (its connection to hylicsd's direct offload socket closes): the host finishes
//     the send (byte-exact, the range's tail too) and the connection (FIN), nothing left;
//   - the guest is killed during a send: the host finishes the send (byte-exact) and the connection (FIN).
// No RST from the guest's address reaches the client in any of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestView } from '../../src/core/api.js';
import { run } from '../../src/os/exec.js';
import { listSteerFlows, listSteerTableGuests } from '../../src/os/nft-steer.js';
import { daemonTag } from '../../src/host/wiring.js';
import { hylics, startDaemon, stateDirCli, stopDaemon, tempStateDir } from '../helpers/cli.js';
import { clientNetns } from '../helpers/net-probe.js';
import { fileServerLine, has, socketOffloadSkip } from '../helpers/socket-offload.js';

const skip = socketOffloadSkip(
  [() => has('tcpdump'), 'needs tcpdump (the capture is what this test checks)'],
  [() => has('capsh'), 'needs capsh (libcap2-bin) to drop CAP_NET_ADMIN'],
);

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** File bytes in flight the daemon allows per guest here: the 64 MiB file goes through the host, 100 MiB not. */
const MAX_BYTES = 80 * MiB;
/** A client reading this slowly keeps a 64 MiB send going for seconds: time to kill something in the middle. */
const SLOW_RATE = '4M';

test('socket offload faults: refusals, no capability, client reset/vanished, daemon and guest killed; no RST, nothing leaked', { skip, timeout: 900_000 }, async (t) => {
  const dir = await tempStateDir('hylics-sockf-');
  const tag = `${process.pid % 100000}`;
  const g = `sf${tag}`;
  const oct = 16 + ((process.pid + 100) % 200);
  const w = clientNetns({ name: `hylics-sfw-${tag}`, hostIf: `hsf${tag}`, hostAddr: `10.252.${oct}.1`, addr: `10.252.${oct}.2` });
  const PORT = 8080; // --offload socket
  const PORT_NOCAP = 8081; // --offload socket, CAP_NET_ADMIN dropped
  const PORT_NOADDON = 8082; // --offload socket, HYLICS_NATIVE=0
  const PORT_KILL = 8083; // --offload socket, the app killed mid-handoff (its pid in fs-kill.pid)
  process.env.HYLICS_OFFLOAD_SOCKET_MAX_BYTES = String(MAX_BYTES);
  let daemon: ChildProcess | undefined = await startDaemon(dir, ['--socket-offload-copy', 'repair']); // the TCP_REPAIR handoff's faults (the descriptor copy's: socket-fdcopy.test.ts)
  delete process.env.HYLICS_OFFLOAD_SOCKET_MAX_BYTES;
  let capture: ChildProcess | undefined;
  const { withOpts, json } = stateDirCli(dir);
  t.after(async () => {
    capture?.kill('SIGKILL');
    if (!daemon) daemon = await startDaemon(dir, ['--socket-offload-copy', 'repair']).catch(() => undefined);
    if (daemon) { await hylics(withOpts(['guest', 'rm', g])); await stopDaemon(daemon); }
    await w.remove();
    await rm(dir, { recursive: true, force: true });
  });

  const v = await json<GuestView>('guest', 'create', g, '--share-size', '200M', '--memory', '512M');
  const addr = v.address;
  const guestNetns = String(v.driverInfo.netns);
  const files: Record<string, Buffer> = { '1m': randomBytes(MiB), '64m': randomBytes(64 * MiB), '100m': randomBytes(100 * MiB) };
  // (re)written right before use: the guest's tiered store moves files idle for 60 s out of the share, and the
  // host's sends are not the guest's use
  const put = (name: string): Promise<void> => writeFile(join(v.share.path, name), files[name]!);
  for (const name of Object.keys(files)) await put(name);

  await w.create();

  const startServers = async (): Promise<void> => {
    const ex = await hylics(withOpts(['guest', 'exec', g, '--', 'sh', '-c', [
      fileServerLine(PORT, 'fs.log'),
      fileServerLine(PORT_NOCAP, 'fs-nocap.log', { prefix: 'capsh --drop=cap_net_admin -- -c \'exec "$0" "$@"\' ' }),
      fileServerLine(PORT_NOADDON, 'fs-noaddon.log', { prefix: 'HYLICS_NATIVE=0 ' }),
      fileServerLine(PORT_KILL, 'fs-kill.log'), 'echo $! > /run/hylics/fs-kill.pid',
    ].join(' ')]));
    assert.equal(ex.code, 0, ex.stderr);
  };
  await startServers();
  const serverLog = (name: string): Promise<string> => readFile(join(dir, 'guests', g, 'run', name), 'utf8').catch(() => '');
  const base = (port = PORT): string => `http://${addr}:${port}`;
  const inW = w.exec;
  for (const port of [PORT, PORT_NOCAP, PORT_NOADDON, PORT_KILL]) {
    for (let i = 0; ; i++) {
      const r = await inW('curl', ['-sf', '-o', '/dev/null', `${base(port)}/1m`], 5000);
      if (r.code === 0) break;
      assert.ok(i < 150, `the file server on port ${port} did not come up: ${r.stderr}\n${await serverLog('fs-nocap.log')}`);
      await sleep(200);
    }
  }
  const rstFile = join(dir, 'rst.txt');
  capture = w.captureRsts(addr, rstFile);
  await sleep(1000);

  const stats = async (): Promise<NonNullable<GuestView['offload']>['socket']> => (await json<GuestView>('guest', 'show', g)).offload!.socket;
  /** Nothing of a handoff left: sets empty, nothing in flight, no host socket on the guest's address, and (no
   *  client connected) no established socket in the guest (a frozen socket stays ESTABLISHED). */
  const nothingLeft = async (what: string): Promise<void> => {
    let last = '';
    for (let i = 0; i < 40; i++) { // the linger after a host-side close (2 s), on a loaded machine
      const flows = await listSteerFlows(g, daemonTag(dir));
      const host = (await run('ss', ['-Htn', 'state', 'established', 'src', addr])).stdout.trim();
      const guest = (await run('ip', ['netns', 'exec', guestNetns, 'ss', '-Htn', 'state', 'established'])).stdout.trim();
      const s = await stats();
      last = JSON.stringify({ flows, host, guest, inFlight: s.inFlight });
      if (flows.hold.length + flows.steer.length + flows.back.length === 0 && host === '' && guest === '' && s.inFlight === 0) return;
      await sleep(250);
    }
    assert.fail(`${what}: left over ${last}`);
  };
  /** Starts a slow download in the client namespace and resolves once the host is sending it (flow steered). */
  const slowDownload = async (
    path: string,
    port = PORT,
  ): Promise<{ p: ChildProcess; done: Promise<{ code: number | null; body: Buffer }> }> => {
    await put(path.slice(1));
    // -m: a client left waiting (for a last byte nobody sends) fails the subtest instead of hanging it
    const p = spawn('ip', ['netns', 'exec', w.name, 'curl', '-s', '-m', '180', '--limit-rate', SLOW_RATE, `${base(port)}${path}`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const chunks: Buffer[] = [];
    p.stdout!.on('data', (d: Buffer) => chunks.push(d));
    const done = new Promise<{ code: number | null; body: Buffer }>((res) =>
      p.on('close', (code) => res({ code, body: Buffer.concat(chunks) })),
    );
    for (let i = 0; ; i++) {
      if ((await listSteerFlows(g, daemonTag(dir))).steer.length > 0) break;
      assert.ok(i < 200, 'the slow download never reached the host send');
      await sleep(50);
    }
    await sleep(500);
    return { p, done };
  };

  await t.test('host refuses (bytes in flight over the guest\'s budget): head and body sent in the guest, byte-exact, then keep-alive', async () => {
    const before = await stats();
    await put('100m');
    await put('1m');
    // the example server passes its headers in the handoff (head): refused, the guest writes them itself first;
    // the raw response (headers and body, -D) must be exactly one response, and the next request on the same
    // connection (a handoff the host takes) must follow it
    const outs = [join(dir, 'budget-100m'), join(dir, 'budget-1m')];
    const heads = join(dir, 'budget.h'); // both responses' headers, in order (-D is one file for the whole command)
    const r = await inW('curl', [
      '-sf', '-w', '%{num_connects}\\n', '-D', heads, '-o', outs[0]!, `${base()}/100m`, '-o', outs[1]!, `${base()}/1m`,
    ], 300_000);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.toString().trim().split('\n').map(Number), [1, 0], 'one connection for both requests');
    assert.equal(sha(await readFile(outs[0]!)), sha(files['100m']!), 'byte-exact from the guest');
    assert.equal(sha(await readFile(outs[1]!)), sha(files['1m']!), 'byte-exact from the host after it');
    const h = await readFile(heads, 'latin1');
    const one = (n: number): string => `HTTP/1\\.1 200 OK\r\n[^]*?Content-Length: ${n}\r\n[^]*?\r\n\r\n`;
    assert.match(h, new RegExp(`^${one(100 * MiB)}${one(MiB)}$`), h);
    const after = await stats();
    assert.equal((after.fallbacks.budget ?? 0) - (before.fallbacks.budget ?? 0), 1, JSON.stringify(after.fallbacks));
    assert.match(await serverLog('fs.log'), /sent in the guest \(budget\)/);
    assert.ok(after.handoffs > before.handoffs, 'the next request on the connection was handed over');
    await nothingLeft('budget');
  });

  await t.test('the app has no CAP_NET_ADMIN / no TCP_REPAIR: sent in the guest with the reason, keep-alive goes on', async () => {
    for (const [port, reason, log] of [[PORT_NOCAP, 'no-cap-net-admin', 'fs-nocap.log'], [PORT_NOADDON, 'no-tcp-repair', 'fs-noaddon.log']] as const) {
      const before = await stats();
      await put('1m');
      const out = join(dir, `ka-${port}`);
      const r = await inW('curl', ['-sf', '-w', '%{num_connects}\\n', '-o', '/dev/null', `${base(port)}/1m`, '-o', out, `${base(port)}/1m`]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.toString().trim().split('\n').map(Number), [1, 0], 'one connection for both requests');
      assert.equal(sha(await readFile(out)), sha(files['1m']!));
      const after = await stats();
      assert.ok((after.fallbacks[reason] ?? 0) - (before.fallbacks[reason] ?? 0) >= 2, `${reason}: ${JSON.stringify(after.fallbacks)}`);
      assert.equal(after.handoffs, before.handoffs, 'no handoff');
      assert.match(await serverLog(log), new RegExp(`sent in the guest \\(${reason}\\)`));
    }
    await nothingLeft('no capability');
  });

  await t.test('client reset mid-send (killed): the app gets PEER_CLOSED, nothing left', async () => {
    const { p, done } = await slowDownload('/64m');
    p.kill('SIGKILL');
    await done;
    await nothingLeft('client reset');
    for (let i = 0; i < 40 && !/went away/.test(await serverLog('fs.log')); i++) await sleep(250);
    assert.match(await serverLog('fs.log'), /request failed: the client went away/);
  });

  await t.test('client vanishes mid-send (its packets dropped both ways, then killed): the host gives up after the stall time, nothing left', async () => {
    const { p, done } = await slowDownload('/64m');
    const nftW = `hylics_sfdrop`;
    await run('ip', ['netns', 'exec', w.name, 'nft', '-f', '-'], { input: `table ip ${nftW} {\n  chain c_in {\n    type filter hook input priority 0; policy accept;\n    ip saddr ${addr} drop\n  }\n  chain c_out {\n    type filter hook output priority 0; policy accept;\n    ip daddr ${addr} drop\n  }\n}\n` });
    p.kill('SIGKILL');
    await done;
    const before = Date.now();
    for (let i = 0; i < 200 && (await stats()).inFlight > 0; i++) await sleep(250);
    assert.equal((await stats()).inFlight, 0, 'the host gave the send up');
    t.diagnostic(`host gave up ${Math.round((Date.now() - before) / 1000)} s after the client vanished`);
    await run('ip', ['netns', 'exec', w.name, 'nft', 'delete', 'table', 'ip', nftW]);
    await nothingLeft('client vanished');
  });

  await t.test('daemon killed during a send: clear error for the app, FIN for the client, restart leaves nothing', async () => {
    const { done } = await slowDownload('/64m');
    daemon!.kill('SIGKILL');
    await new Promise((r) => daemon!.once('exit', r));
    daemon = undefined;
    const r = await done;
    assert.ok(r.body.length < files['64m']!.length, 'the body is cut');
    assert.equal(sha(r.body), sha(files['64m']!.subarray(0, r.body.length)), 'what arrived is byte-exact');
    assert.ok(r.code !== 0, 'curl saw a truncated body');
    for (let i = 0; i < 40 && !/handoff lost/.test(await serverLog('fs.log')); i++) await sleep(250);
    assert.match(await serverLog('fs.log'), /request failed: socket handoff lost/, 'the app got a clear error');
    assert.ok((await listSteerTableGuests(daemonTag(dir))).includes(g), 'the dead daemon left its table');
    daemon = await startDaemon(dir, ['--socket-offload-copy', 'repair']); // the TCP_REPAIR handoff's faults (the descriptor copy's: socket-fdcopy.test.ts)
    // the dead daemon's table (its flow in `steer`) went at the start; the guest's agent may already have reconnected
    // and had its table made again, empty
    assert.deepEqual(await listSteerFlows(g, daemonTag(dir)), { hold: [], steer: [], back: [] }, 'the restarted daemon removed the leftover steering');
    // the agent reconnects; the next request goes through the host again
    for (let i = 0; i < 120 && !(await json<GuestView>('guest', 'show', g)).agentConnected; i++) await sleep(250);
    const fresh = randomBytes(MiB);
    await writeFile(join(v.share.path, 'fresh'), fresh); // (see put)
    let ok = await inW('curl', ['-sf', `${base()}/fresh`]);
    for (let i = 0; i < 20 && ok.code !== 0; i++) { await sleep(1000); ok = await inW('curl', ['-sf', `${base()}/fresh`]); }
    assert.equal(ok.code, 0, `after the restart: curl ${ok.code} ${ok.stderr}\n${(await serverLog('fs.log')).slice(-2000)}`);
    assert.equal(sha(ok.stdout), sha(fresh));
    assert.ok((await stats()).handoffs >= 1, 'handoffs again after the restart');
    await nothingLeft('daemon killed');
  });

  await t.test('the app killed during a send (its direct offload connection closes): the host finishes it byte-exact with FIN, nothing left', async () => {
    // before: the host handed the connection back to nobody (the flow held in `back`, the range's last byte never
    // sent): the client waited until its timeout, the steering stayed until the return timeout (30 s)
    const { done } = await slowDownload('/64m', PORT_KILL);
    const k = await hylics(withOpts(['guest', 'exec', g, '--', 'sh', '-c', 'kill -9 "$(cat /run/hylics/fs-kill.pid)"']));
    assert.equal(k.code, 0, k.stderr);
    const r = await done;
    assert.equal(r.code, 0, `the client got the whole body (curl exit ${r.code}, ${r.body.length} bytes)`);
    assert.equal(sha(r.body), sha(files['64m']!), 'byte-exact');
    await nothingLeft('app killed');
  });

  await t.test('guest killed during a send: the host finishes it byte-exact and closes with FIN', async () => {
    const { done } = await slowDownload('/64m');
    const pid = Number((await json<GuestView>('guest', 'show', g)).driverInfo.initPid);
    assert.ok(pid > 1, 'the sandbox init pid');
    process.kill(pid, 'SIGKILL');
    const r = await done;
    assert.equal(r.code, 0, 'the client got the whole body');
    assert.equal(sha(r.body), sha(files['64m']!), 'byte-exact');
    for (let i = 0; i < 40; i++) {
      const f = await listSteerFlows(g, daemonTag(dir));
      if (f.hold.length + f.steer.length + f.back.length === 0) break;
      await sleep(250);
    }
    assert.deepEqual(await listSteerFlows(g, daemonTag(dir)), { hold: [], steer: [], back: [] });
    assert.equal((await run('ss', ['-Htn', 'state', 'established', 'src', addr])).stdout.trim(), '', 'no host socket on the guest\'s address');
  });

  await t.test('no RST from the guest\'s address reached the client in any fault', async () => {
    await sleep(500);
    const lines = (await readFile(rstFile, 'utf8')).trim();
    assert.equal(lines, '', `RSTs from ${addr}:\n${lines}`);
  });
});
