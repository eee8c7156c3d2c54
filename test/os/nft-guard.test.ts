// The guest firewall (src/os/nft-guard.ts): exact rendering and validation, then the real table and real traffic
// in a private "host" network namespace (nft tables are per namespace), so the host's own table is not touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HylicsError } from '../../src/core/errors/index.js';
import { applyGuard, guardInstalled, guardIntact, listGuard, listGuardLinks, removeGuard, renderGuardScript } from '../../src/os/nft-guard.js';
import { run, runRaw } from '../../src/os/exec.js';
import { listenTcp, listenUdp, sendIcmpError, tcpConnect, udpSend } from '../helpers/net-probe.js';
import { has } from '../helpers/proc.js';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces, nftables)' : !has('nft') ? 'needs nft (apt-get install nftables)' : !has('ip') ? 'needs ip (iproute2)' : false;

const RULES = `table inet hylics_guard {
  set guest_src { type ifname . ipv4_addr; }
  chain pre { type filter hook prerouting priority raw; policy accept; }
  chain owner { type filter hook prerouting priority mangle; policy accept; }
  chain input { type filter hook input priority filter; policy accept; }
  chain forward { type filter hook forward priority filter; policy accept; }
}
flush chain inet hylics_guard pre
flush chain inet hylics_guard owner
flush chain inet hylics_guard input
flush chain inet hylics_guard forward
table inet hylics_guard {
  chain pre {
    iifname "hyh*" meta nfproto ipv6 counter drop
    iifname "hyh*" iifname . ip saddr != @guest_src counter drop
  }
  chain owner {
    iifname "hyh*" ct direction original iifname . ct original ip saddr @guest_src return
    iifname "hyh*" ct direction reply iifname . ct reply ip saddr @guest_src return
    iifname "hyh*" counter drop
  }
  chain input {
    iifname "hyh*" ct direction reply ct state established,related accept
    iifname "hyh*" counter drop
  }
  chain forward {
    iifname "hyh*" oifname "hyh*" counter drop
  }
}
`;

test('renderGuardScript: fixed rules, then set changes (removal adds first so it never fails)', () => {
  assert.equal(renderGuardScript(), RULES);
  assert.equal(renderGuardScript({ add: [] , remove: [] }), RULES);
  assert.equal(renderGuardScript({ add: [{ ifname: 'hyh1', addr: '10.213.1.2' }, { ifname: 'hyh20', addr: '10.213.20.2' }] }),
    `${RULES}add element inet hylics_guard guest_src { "hyh1" . 10.213.1.2, "hyh20" . 10.213.20.2 }\n`);
  assert.equal(renderGuardScript({ add: [{ ifname: 'hyh1', addr: '10.213.1.2' }], remove: [{ ifname: 'hyh3', addr: '10.213.3.2' }] }),
    `${RULES}add element inet hylics_guard guest_src { "hyh1" . 10.213.1.2, "hyh3" . 10.213.3.2 }\ndelete element inet hylics_guard guest_src { "hyh3" . 10.213.3.2 }\n`);
});

test('renderGuardScript validates every link: nothing unchecked reaches nft', () => {
  const bad = (ifname: unknown, addr: unknown): void => assert.throws(
    () => renderGuardScript({ add: [{ ifname, addr } as { ifname: string; addr: string }] }),
    (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_INVALID_ARGUMENT',
    `${String(ifname)} ${String(addr)}`);
  bad('eth0', '10.0.0.2'); // not a guest link
  bad('hyh', '10.0.0.2'); // the bare prefix
  bad('hyh1"; flush ruleset; "', '10.0.0.2');
  bad('hyh1 ', '10.0.0.2');
  bad('hyh1234567890123', '10.0.0.2'); // 16 characters: longer than IFNAMSIZ allows
  bad('hyh1', '10.0.0.256');
  bad('hyh1', '10.0.0.2; flush ruleset');
  bad('hyh1', 'fe80::1');
  bad('hyh1', '');
  bad(undefined, '10.0.0.2');
  bad('hyh1', 5);
  assert.throws(() => renderGuardScript({ remove: [{ ifname: 'hyh1', addr: 'x' }] }), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_INVALID_ARGUMENT');
});

const ns = (s: string, ...a: string[]): Promise<unknown> => run('ip', ['netns', 'exec', s, ...a]);

test('applyGuard in a private namespace: idempotent rules, set changes keep other elements, remove', { skip }, async (t) => {
  const h = `hyg-nft-${process.pid}`;
  t.after(async () => { await runRaw('ip', ['netns', 'delete', h]); });
  await run('ip', ['netns', 'add', h]);
  const opts = { netns: h };
  assert.equal(await guardInstalled(opts), false);
  assert.equal(await listGuard(opts), '');
  assert.deepEqual(await listGuardLinks(opts), []);
  await applyGuard({}, opts);
  assert.ok(await guardInstalled(opts));
  assert.deepEqual(await listGuardLinks(opts), []);
  await applyGuard({ add: [{ ifname: 'hyh1', addr: '10.213.1.2' }, { ifname: 'hyh2', addr: '10.213.2.2' }] }, opts);
  // a second daemon's change: adds its own, leaves the others
  await applyGuard({ add: [{ ifname: 'hyh7', addr: '10.213.7.2' }] }, opts);
  await applyGuard({ add: [{ ifname: 'hyh7', addr: '10.213.7.2' }] }, opts); // again: no error, no duplicate
  const sorted = async (): Promise<string[]> => (await listGuardLinks(opts)).map((l) => `${l.ifname}=${l.addr}`).sort();
  assert.deepEqual(await sorted(), ['hyh1=10.213.1.2', 'hyh2=10.213.2.2', 'hyh7=10.213.7.2']);
  await applyGuard({ remove: [{ ifname: 'hyh2', addr: '10.213.2.2' }] }, opts);
  await applyGuard({ remove: [{ ifname: 'hyh2', addr: '10.213.2.2' }, { ifname: 'hyh9', addr: '10.213.9.2' }] }, opts); // absent: fine
  assert.deepEqual(await sorted(), ['hyh1=10.213.1.2', 'hyh7=10.213.7.2']);
  const listed = await listGuard(opts);
  // the rules are there exactly once however often they were applied
  assert.equal((listed.match(/drop/g) ?? []).length, 5, listed);
  assert.match(listed, /iifname "hyh\*" iifname \. ip saddr != @guest_src counter packets \d+ bytes \d+ drop/);
  assert.match(listed, /type filter hook prerouting priority raw; policy accept;/);
  // guardIntact sees every way the guard can be broken from outside; applyGuard repairs each
  const mine = [{ ifname: 'hyh1', addr: '10.213.1.2' }];
  assert.equal(await guardIntact(mine, opts), true);
  assert.equal(await guardIntact([{ ifname: 'hyh2', addr: '10.213.2.2' }], opts), false, 'a link not in the set');
  await ns(h, 'nft', 'insert', 'rule', 'inet', 'hylics_guard', 'input', 'iifname', 'hyh1', 'accept');
  assert.equal(await guardIntact(mine, opts), false, 'a rule inserted');
  await applyGuard({}, opts);
  assert.equal(await guardIntact(mine, opts), true);
  await ns(h, 'nft', 'delete', 'element', 'inet', 'hylics_guard', 'guest_src', '{ "hyh1" . 10.213.1.2 }');
  assert.equal(await guardIntact(mine, opts), false, 'an element deleted');
  await applyGuard({ add: mine }, opts);
  assert.equal(await guardIntact(mine, opts), true);
  // rules someone flushed come back with the next change, the set stays
  await ns(h, 'nft', 'flush', 'chain', 'inet', 'hylics_guard', 'input');
  assert.equal(await guardIntact(mine, opts), false, 'a chain flushed');
  await applyGuard({}, opts);
  assert.equal(await guardIntact(mine, opts), true);
  assert.equal(((await listGuard(opts)).match(/drop/g) ?? []).length, 5);
  assert.equal((await listGuardLinks(opts)).length, 2);
  await removeGuard(opts);
  assert.equal(await guardInstalled(opts), false);
  assert.equal(await guardIntact([], opts), false, 'the table deleted');
  await removeGuard(opts); // idempotent
  // an nft refusal becomes HYLICS_ERR_GUEST_FIREWALL_FAILED (the table holds a conflicting chain here)
  await ns(h, 'nft', 'add', 'table', 'inet', 'hylics_guard');
  await ns(h, 'nft', 'add chain inet hylics_guard input { type filter hook output priority 0; }');
  await assert.rejects(applyGuard({}, opts), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_GUEST_FIREWALL_FAILED');
});

/**
 * The topology of the traffic tests, in private namespaces: H plays the host (ip_forward on), GA and GB are guests
 * on links hyh1 / hyh2 (10.213.1.0/24, 10.213.2.0/24), W is "the world" behind a link that is not a guest link
 * (wan0, 10.99.0.0/30). Everything is deleted after the test; `closers` run first.
 */
async function topology(
  t: { after: (fn: () => Promise<void>) => void },
  [H, GA, GB, W]: [string, string, string, string],
): Promise<Array<() => Promise<void>>> {
  const closers: Array<() => Promise<void>> = [];
  t.after(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    for (const n of [GA, GB, W, H]) await runRaw('ip', ['netns', 'delete', n]);
  });
  for (const n of [H, GA, GB, W]) {
    await run('ip', ['netns', 'add', n]);
    await run('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
  }
  await ns(
    H,
    'sysctl',
    '-qw',
    'net.ipv4.ip_forward=1',
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
  );
  const link = async (
    hostIf: string,
    peer: string,
    peerIf: string,
    hostAddr: string,
    peerAddr: string,
    len: number,
  ): Promise<void> => {
    await run('ip', ['-n', H, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf, 'netns', peer]);
    await run('ip', ['-n', H, 'addr', 'add', `${hostAddr}/${len}`, 'dev', hostIf]);
    await run('ip', ['-n', H, 'link', 'set', hostIf, 'up']);
    await run('ip', ['-n', peer, 'addr', 'add', `${peerAddr}/${len}`, 'dev', peerIf]);
    await run('ip', ['-n', peer, 'link', 'set', peerIf, 'up']);
    await run('ip', ['-n', peer, 'route', 'add', 'default', 'via', hostAddr]);
  };
  await link('hyh1', GA, 'hyg1', '10.213.1.1', '10.213.1.2', 24);
  await link('hyh2', GB, 'hyg2', '10.213.2.1', '10.213.2.2', 24);
  await link('wan0', W, 'wan1', '10.99.0.1', '10.99.0.2', 30);
  return closers;
}

test('guest firewall on real traffic: guests cannot reach the host or each other or spoof; the host and the world can', { skip, timeout: 120_000 }, async (t) => {
  const tag = `${process.pid % 100000}`;
  const H = `hyg-h-${tag}`;
  const GA = `hyg-a-${tag}`;
  const GB = `hyg-b-${tag}`;
  const W = `hyg-w-${tag}`;
  const closers = await topology(t, [H, GA, GB, W]);

  const hostAny = await listenTcp(H, '::'); // every host address, IPv4 and IPv6
  closers.push(() => hostAny.close());
  const hostLink = await listenTcp(H, '10.213.1.1');
  closers.push(() => hostLink.close());
  const inB = await listenTcp(GB, '0.0.0.0');
  closers.push(() => inB.close());
  const inA = await listenTcp(GA, '0.0.0.0');
  closers.push(() => inA.close());
  const world = await listenTcp(W, '0.0.0.0');
  closers.push(() => world.close());
  const worldUdp = await listenUdp(W, '0.0.0.0');
  closers.push(() => worldUdp.close());

  // the host's IPv6 link-local address on hyh1, once DAD has finished on both ends
  const linkLocal = async (n: string, dev: string): Promise<string | undefined> => {
    const j = JSON.parse((await run('ip', ['-n', n, '-j', '-6', 'addr', 'show', 'dev', dev])).stdout) as Array<{ addr_info?: Array<{ local: string; scope: string; tentative?: boolean }> }>;
    return j.flatMap((x) => x.addr_info ?? []).find((a) => a.scope === 'link' && !a.tentative)?.local;
  };
  let hostLl: string | undefined;
  for (let i = 0; i < 100 && (!(hostLl = await linkLocal(H, 'hyh1')) || !(await linkLocal(GA, 'hyg1'))); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(hostLl, 'hyh1 got an IPv6 link-local address');

  const probes = async (): Promise<Record<string, string>> => ({
    aToHostLink: await tcpConnect(GA, '10.213.1.1', hostLink.port),
    aToHostAny: await tcpConnect(GA, '10.213.1.1', hostAny.port),
    aToHostOtherAddr: await tcpConnect(GA, '10.99.0.1', hostAny.port),
    aToHostV6: await tcpConnect(GA, `${hostLl}%hyg1`, hostAny.port),
    aToB: await tcpConnect(GA, '10.213.2.2', inB.port),
    bToA: await tcpConnect(GB, '10.213.1.2', inA.port),
    hostToA: await tcpConnect(H, '10.213.1.2', inA.port),
    worldToA: await tcpConnect(W, '10.213.1.2', inA.port),
    aToWorld: await tcpConnect(GA, '10.99.0.2', world.port),
  });

  // control: without the guard every path is open (so a 'timeout' below is the guard's doing)
  const before = await probes();
  for (const [k, v] of Object.entries(before)) assert.equal(v, 'connected', `${k} without the guard`);
  await Promise.all([hostLink.waitCount(1), hostAny.waitCount(3), inB.waitCount(1)]);
  const seen = [hostLink.lines.length, hostAny.lines.length, inB.lines.length];
  assert.deepEqual(seen, [1, 3, 1]);
  await ns(GA, 'ip', 'addr', 'add', '10.213.2.2/32', 'dev', 'hyg1'); // A also claims B's address
  await udpSend(GA, '10.99.0.2', worldUdp.port, 'spoof-0', { localAddress: '10.213.2.2' });
  await udpSend(GA, '10.99.0.2', worldUdp.port, 'own-0', { localAddress: '10.213.1.2' });
  await worldUdp.waitFor(/ own-0$/);
  assert.ok(worldUdp.lines.includes('10.213.2.2 spoof-0'), worldUdp.lines.join('\n'));

  await applyGuard({ add: [{ ifname: 'hyh1', addr: '10.213.1.2' }, { ifname: 'hyh2', addr: '10.213.2.2' }] }, { netns: H });
  await ns(GA, 'ip', 'addr', 'del', '10.213.2.2/32', 'dev', 'hyg1');
  const after = await probes();
  await ns(GA, 'ip', 'addr', 'add', '10.213.2.2/32', 'dev', 'hyg1');
  assert.deepEqual(after, {
    aToHostLink: 'timeout', aToHostAny: 'timeout', aToHostOtherAddr: 'timeout', aToHostV6: 'timeout',
    aToB: 'timeout', bToA: 'timeout',
    hostToA: 'connected', worldToA: 'connected', aToWorld: 'connected',
  });
  // spoofed sources: B's address and the host's own, sent before a datagram with A's own address
  await udpSend(GA, '10.99.0.2', worldUdp.port, 'spoof-1', { localAddress: '10.213.2.2' });
  await ns(GA, 'ip', 'addr', 'add', '10.99.0.1/32', 'dev', 'hyg1');
  await udpSend(GA, '10.99.0.2', worldUdp.port, 'spoof-2', { localAddress: '10.99.0.1' });
  await udpSend(GA, '10.99.0.2', worldUdp.port, 'own-1', { localAddress: '10.213.1.2' });
  await worldUdp.waitFor(/ own-1$/);
  assert.deepEqual(worldUdp.lines.filter((l) => /spoof-[12]/.test(l)), []);
  assert.ok(worldUdp.lines.includes('10.213.1.2 own-1'));
  const pre = (await run('ip', ['netns', 'exec', H, 'nft', 'list', 'chain', 'inet', 'hylics_guard', 'pre'])).stdout;
  const spoofDrops = Number(/saddr != @guest_src counter packets (\d+)/.exec(pre)?.[1]);
  assert.ok(spoofDrops >= 2, pre);
  // no connection from a guest ever reached a host listener or B
  assert.deepEqual([hostLink.lines.length, hostAny.lines.length, inB.lines.length], seen, 'only the controls got through');

  // a removed link's address is spoofing from then on
  await applyGuard({ remove: [{ ifname: 'hyh1', addr: '10.213.1.2' }] }, { netns: H });
  assert.equal(await tcpConnect(GA, '10.99.0.2', world.port), 'timeout');
  assert.equal(await tcpConnect(GB, '10.99.0.2', world.port), 'connected');
});

// conntrack marks an ICMP error RELATED to whatever flow its quoted header names, whoever sends it (the kernel checks
// only the outer destination). A guest could so deliver errors into another guest's flows or the host's own flows,
// and ride on a connection it opened before the guard was there. The guard accepts a guest's packets only on
// flows that are its own (owner chain) and, towards the host, only in the reply direction.
test('guest firewall: no forged ICMP errors into others\' flows, no riding on a flow the guest opened, replies pass', { skip: skip || (!has('python3') ? 'needs python3 (raw ICMP)' : false), timeout: 120_000 }, async (t) => {
  const tag = `${process.pid % 100000}`;
  const [H, GA, GB, W] = ['h', 'a', 'b', 'w'].map((x) => `hyg-i${x}-${tag}`) as [string, string, string, string];
  const closers = await topology(t, [H, GA, GB, W]);
  // counters of ICMP errors from A that arrive (the ct rule turns conntrack on in the namespace from the start, as
  // any NAT or stateful rule on a real host does, so flows opened before the guard are tracked), after the guard's
  // chains (input priority 10): in B, and in the host
  // [to its world address (forged), to its address on A's link (A's genuine errors)]
  const count = (daddrs: string[]): string => `table ip probe {
  chain in {
    type filter hook input priority 10; policy accept;
${daddrs.map((d) => `    icmp type destination-unreachable ip saddr 10.213.1.2 ip daddr ${d} counter`).join('\n')}
    ct state invalid counter
  }
}
`;
  await run('ip', ['netns', 'exec', GB, 'nft', '-f', '-'], { input: count(['10.213.2.2']) });
  await run('ip', ['netns', 'exec', H, 'nft', '-f', '-'], { input: count(['10.99.0.1', '10.213.1.1']) });
  const counters = async (n: string): Promise<number[]> => [...(await run('ip', ['netns', 'exec', n, 'nft', 'list', 'chain', 'ip', 'probe', 'in'])).stdout.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
  const forgedSeen = async (): Promise<number[]> => [(await counters(GB))[0]!, (await counters(H))[0]!];

  const world = await listenUdp(W, '0.0.0.0', 0, { echo: true });
  closers.push(() => world.close());
  const hostEcho = await listenUdp(H, '10.213.1.1', 0, { echo: true });
  closers.push(() => hostEcho.close());
  // flows that are not A's: B to the world, the host to the world (both answered, so conntrack has them)
  await udpSend(GB, '10.99.0.2', world.port, 'b-flow', { localPort: 40001 });
  await udpSend(H, '10.99.0.2', world.port, 'h-flow', { localAddress: '10.99.0.1', localPort: 40002 });
  await world.waitFor(/ h-flow$/);
  // a flow A opens to the host while there is no guard yet (answered: established)
  await udpSend(GA, '10.213.1.1', hostEcho.port, 'early', { localPort: 40003 });
  await hostEcho.waitFor(/ early$/);

  const forge = async (): Promise<void> => {
    await sendIcmpError(GA, { src: '10.213.1.2', dst: '10.213.2.2', innerSrc: '10.213.2.2', innerDst: '10.99.0.2', sport: 40001, dport: world.port });
    await sendIcmpError(GA, { src: '10.213.1.2', dst: '10.99.0.1', innerSrc: '10.99.0.1', innerDst: '10.99.0.2', sport: 40002, dport: world.port });
  };
  // control: without the guard the forged errors arrive (so no increase below is the guard's doing)
  await forge();
  await udpSend(GA, '10.99.0.2', world.port, 'sync-0');
  await world.waitFor(/ sync-0$/);
  assert.deepEqual(await forgedSeen(), [1, 1], 'forged errors reach B and the host without the guard');

  await applyGuard({ add: [{ ifname: 'hyh1', addr: '10.213.1.2' }, { ifname: 'hyh2', addr: '10.213.2.2' }] }, { netns: H });
  await forge();
  await udpSend(GA, '10.213.1.1', hostEcho.port, 'ride', { localPort: 40003 }); // on the flow A opened before
  await udpSend(GA, '10.99.0.2', world.port, 'sync-1');
  await world.waitFor(/ sync-1$/);
  assert.deepEqual(await forgedSeen(), [1, 1], 'forged errors dropped by the guard');
  assert.deepEqual(hostEcho.lines.filter((l) => / ride$/.test(l)), [], 'a flow A opened to the host before the guard carries nothing after it');

  // replies still pass: A's own port-unreachable answer to a datagram the host sent to a closed port of A
  const genuine = (await counters(H))[1]!;
  await udpSend(H, '10.213.1.2', 9, 'to-closed', { localAddress: '10.213.1.1', localPort: 40004 });
  for (let i = 0; i < 50 && (await counters(H))[1]! === genuine; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await counters(H))[1], genuine + 1, 'A\'s own ICMP error about the host\'s flow reaches the host');
});
