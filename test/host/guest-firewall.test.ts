// The guest firewall with the real daemon and two sandbox guests: a guest cannot open connections to the host
// (its own link address, any host address, 0.0.0.0 listeners) or to another guest, and cannot send with another
// source address; the host and clients elsewhere still reach guests, and guests still reach the rest of the world.
// The table (inet hylics_guard) is host-wide and shared with other daemons (other tests may run now): this test
// removes its own guests (whose pairs the daemon then forgets) and deletes the table only when nothing else uses it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecResult, GuestView } from '../../src/core/api.js';
import { applyGuard, guardInstalled, guardIntact, listGuardLinks, removeGuard } from '../../src/os/nft-guard.js';
import { NODE_BIN, entryArgv } from '../../src/os/self.js';
import { run } from '../../src/os/exec.js';
import { hylics, startDaemon, stateDirCli, stopDaemon, tempStateDir } from '../helpers/cli.js';
import { clientNetns, listenTcp, listenUdp, tcpConnect, udpSend, type Listener } from '../helpers/net-probe.js';
import { has } from '../helpers/proc.js';

const skip = process.getuid?.() !== 0 ? 'needs root (daemon: mounts, namespaces, nftables)' : !has('nft') ? 'needs nft (apt-get install nftables)' : false;

interface SandboxInfo { netns: string; hostIf: string; guestIf: string }

/** Delete the table only when this test brought it and no guest link of anyone is left (another daemon needs it). */
async function removeGuardIfUnused(wasThere: boolean): Promise<void> {
  const links = readdirSync('/sys/class/net').filter((n) => n.startsWith('hyh'));
  if (!wasThere && links.length === 0 && (await listGuardLinks().catch(() => [1])).length === 0)
    await removeGuard().catch(() => undefined);
}

test('guest firewall: guests reach neither the host nor each other nor spoof; host and world reach guests', { skip, timeout: 600_000 }, async (t) => {
  const dir = await tempStateDir('hylics-guard-');
  const tag = `${process.pid % 100000}`;
  const [ga, gb] = [`fwa${tag}`, `fwb${tag}`];
  const wOct = 16 + (process.pid % 200);
  // a client namespace on a link that is not a guest link
  const w = clientNetns({ name: `hylics-fww-${tag}`, hostIf: `hfw${tag}`, hostAddr: `10.254.${wOct}.1`, addr: `10.254.${wOct}.2` });
  const { hostAddr: wHostAddr, addr: wAddr } = w;
  const guardBefore = await guardInstalled();
  const closers: Listener[] = [];
  let daemon: ChildProcess | undefined = await startDaemon(dir);
  const { withOpts, json } = stateDirCli(dir);
  t.after(async () => {
    for (const l of closers) await l.close().catch(() => undefined);
    // died in the restart step: one is needed to remove guests
    daemon ??= await startDaemon(dir).catch(() => undefined);
    if (daemon) {
      for (const g of [ga, gb]) await hylics(withOpts(['guest', 'rm', g]));
      await stopDaemon(daemon);
    }
    await w.remove();
    await rm(dir, { recursive: true, force: true });
    await removeGuardIfUnused(guardBefore);
  });

  // the daemon installs the guard at start, before any guest exists
  assert.ok(await guardInstalled(), 'table inet hylics_guard after daemon start');

  const a = await json<GuestView>('guest', 'create', ga, '--share-size', '8M', '--memory', '256M');
  const b = await json<GuestView>('guest', 'create', gb, '--share-size', '8M', '--memory', '256M');
  const ai = a.driverInfo as unknown as SandboxInfo;
  const bi = b.driverInfo as unknown as SandboxInfo;
  assert.match(ai.hostIf, /^hyh\d+$/);
  const pairs = (await listGuardLinks()).map((l) => `${l.ifname}=${l.addr}`);
  assert.ok(pairs.includes(`${ai.hostIf}=${a.address}`), pairs.join(' '));
  assert.ok(pairs.includes(`${bi.hostIf}=${b.address}`), pairs.join(' '));

  // a client namespace elsewhere (like a test client or another network behind the host)
  await w.create();

  const hostLink = await listenTcp(undefined, a.hostAddress); // the host end of A's own link
  closers.push(hostLink);
  const hostAny = await listenTcp(undefined, '0.0.0.0');
  closers.push(hostAny);
  const inA = await listenTcp(ai.netns, '0.0.0.0');
  closers.push(inA);
  const inB = await listenTcp(bi.netns, '0.0.0.0');
  closers.push(inB);
  const world = await listenTcp(w.name, '0.0.0.0');
  closers.push(world);
  const worldUdp = await listenUdp(w.name, '0.0.0.0');
  closers.push(worldUdp);

  // As the guest itself (its agent runs the command): exit 0 = connected, 124 = no answer (dropped).
  const fromA = async (addr: string, port: number): Promise<number> => {
    const r = await hylics(withOpts(['guest', 'exec', ga, '--', 'timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${addr}/${port}`], ['--json']));
    return (JSON.parse(r.stdout) as ExecResult).exitCode ?? -1; // the CLI exits with the command's status
  };
  assert.equal(await fromA(a.hostAddress, hostLink.port), 124, 'A to the host on its own link');
  assert.equal(await fromA(a.hostAddress, hostAny.port), 124, 'A to a 0.0.0.0 listener on the host');
  assert.equal(await fromA(b.hostAddress, hostAny.port), 124, 'A to another host address');
  assert.equal(await fromA(wHostAddr, hostAny.port), 124, 'A to a host address on a non-guest link');
  assert.equal(await fromA(b.address, inB.port), 124, 'A to a listener in B');
  assert.equal(await tcpConnect(bi.netns, a.address, inA.port), 'timeout', 'B to a listener in A');
  // ...while the host and clients elsewhere reach guests, and A reaches the world
  assert.equal(await tcpConnect(undefined, a.address, inA.port), 'connected', 'host to A');
  assert.equal(await tcpConnect(undefined, b.address, inB.port), 'connected', 'host to B');
  assert.equal(await tcpConnect(w.name, a.address, inA.port), 'connected', 'client elsewhere to A');
  assert.equal(await fromA(wAddr, world.port), 0, 'A to the world');
  assert.deepEqual(hostLink.lines, []);
  assert.equal(hostAny.lines.filter((l) => l.includes(a.address)).length, 0);
  assert.equal(inB.lines.filter((l) => l.includes(a.address)).length, 0);

  // Spoofing, as root in A's namespace: A also claims B's address and sends with it as source.
  await run('ip', ['-n', ai.netns, 'addr', 'add', `${b.address}/32`, 'dev', ai.guestIf]);
  assert.equal(await tcpConnect(ai.netns, a.hostAddress, hostAny.port, { localAddress: b.address }), 'timeout', 'spoofed SYN to the host');
  await udpSend(ai.netns, wAddr, worldUdp.port, 'spoof-b', { localAddress: b.address });
  await udpSend(ai.netns, wAddr, worldUdp.port, 'spoof-host', { localAddress: a.hostAddress }).catch(() => undefined); // the kernel may refuse this bind
  await udpSend(ai.netns, wAddr, worldUdp.port, 'own', { localAddress: a.address });
  await worldUdp.waitFor(/ own$/);
  assert.deepEqual(worldUdp.lines, [`${a.address} own`], 'only the datagram with A\'s own source reached the world');
  assert.deepEqual(hostAny.lines.filter((l) => l.includes(b.address)), []);

  // Someone breaks the guard while the guests run (a firewall reload flushes chains, drops elements): the daemon's
  // periodic check restores it, and A is cut off from the host again. (Only the input chain and A's own pair are
  // touched: the table is shared with whatever else runs on this host.)
  const mine = [{ ifname: ai.hostIf, addr: a.address }, { ifname: bi.hostIf, addr: b.address }];
  await run('nft', ['flush', 'chain', 'inet', 'hylics_guard', 'input']);
  await run('nft', ['delete', 'element', 'inet', 'hylics_guard', 'guest_src', `{ "${ai.hostIf}" . ${a.address} }`]);
  assert.equal(await guardIntact(mine), false);
  for (let i = 0; i < 120 && !(await guardIntact(mine)); i++) await new Promise((r) => setTimeout(r, 250));
  assert.equal(await guardIntact(mine), true, 'the daemon restored the guard');
  assert.equal(await fromA(a.hostAddress, hostAny.port), 124, 'A to the host once the guard is restored');
  assert.equal(await fromA(wAddr, world.port), 0, 'A to the world once its pair is back');

  // a removed guest's pair is forgotten; the other's stays, also across a daemon restart (re-adopted)
  await json('guest', 'rm', ga);
  let links = (await listGuardLinks()).map((l) => l.ifname);
  assert.ok(!links.includes(ai.hostIf), links.join(' '));
  assert.ok(links.includes(bi.hostIf));
  await stopDaemon(daemon);
  daemon = undefined;
  assert.ok(await guardInstalled(), 'the guard stays while the daemon is down (its guests keep running)');
  daemon = await startDaemon(dir);
  links = (await listGuardLinks()).map((l) => l.ifname);
  assert.ok(links.includes(bi.hostIf));
  assert.equal(await tcpConnect(undefined, b.address, inB.port), 'connected', 'host to B after the restart');
  await json('guest', 'rm', gb);
  assert.ok(!(await listGuardLinks()).some((l) => l.ifname === bi.hostIf));
});

// --no-guest-firewall: the daemon installs nothing, but the table is host-wide; when one is there (another daemon's,
// here the test's) the daemon still keeps its guests' pairs in it, or the table would drop all their traffic.
test('hylics daemon --no-guest-firewall: nothing installed, own pairs kept in a table that is there', { skip, timeout: 300_000 }, async (t) => {
  const dir = await tempStateDir('hylics-noguard-');
  const g = `fwn${process.pid % 100000}`;
  const guardBefore = await guardInstalled();
  const log = await open(join(dir, 'hylicsd.log'), 'a');
  const daemon = spawn(NODE_BIN, [...entryArgv('cli/main'), 'daemon', '--state-dir', dir, '--no-guest-firewall', '--log-level', 'debug'], { stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  const cli = (...args: string[]) => hylics([...args.slice(0, 2), '--state-dir', dir, ...args.slice(2)]);
  let listener: Listener | undefined;
  t.after(async () => {
    await listener?.close().catch(() => undefined);
    await cli('guest', 'rm', g);
    await stopDaemon(daemon);
    await rm(dir, { recursive: true, force: true });
    await removeGuardIfUnused(guardBefore);
  });
  for (let i = 0; (await hylics(['status', '--state-dir', dir])).code !== 0; i++) {
    assert.ok(i < 120 && daemon.exitCode === null, `daemon did not come up: ${await readFile(join(dir, 'hylicsd.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.match(await readFile(join(dir, 'hylicsd.log'), 'utf8'), /guest firewall off \(--no-guest-firewall\)/);
  await applyGuard(); // as another daemon would
  const r = await hylics(['guest', 'create', '--state-dir', dir, '--json', g, '--share-size', '8M', '--memory', '256M']);
  assert.equal(r.code, 0, r.stderr);
  const v = JSON.parse(r.stdout) as GuestView;
  const info = v.driverInfo as unknown as SandboxInfo;
  assert.ok((await listGuardLinks()).some((l) => l.ifname === info.hostIf && l.addr === v.address), 'own pair kept in the existing table');
  listener = await listenTcp(info.netns, '0.0.0.0');
  assert.equal(await tcpConnect(undefined, v.address, listener.port), 'connected', 'host to the guest: its replies pass the table');
  assert.equal((await cli('guest', 'rm', g)).code, 0);
  assert.ok(!(await listGuardLinks()).some((l) => l.ifname === info.hostIf));
});
