// A frozen socket sends nothing that reaches the client (docs/offload-socket.md, "Frozen sockets send nothing"):
// TCP_REPAIR does not stop a socket's timers, so a guest socket frozen with bytes not yet acknowledged (the quiesce
// lets the app's headers through unacknowledged) retransmits them; such a packet carries a newer TCP timestamp than
// the state the host restores, and the client's PAWS then dropped the host's segments until its RTO (1 s, 2 s,
// 4 s). freezeSilent gives the frozen socket's packets FROZEN_DSCP and the steering table made with the guest's
// address drops them. A real connection between the host (the client's side) and a guest network namespace; the
// client's own count of segments received (ss segs_in) says whether a retransmission reached it. The waits are for
// events the guest reports (its retransmitted bytes growing), no timing is asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { NODE_BIN } from '../../src/os/self.js';
import { createSteerTable, frozenDropped, removeSteerTable } from '../../src/os/nft-steer.js';
import { FROZEN_TOS, dropFilter, queues, sendDrainFreeze, socketFd, tcpRepairAvailable } from '../../src/os/tcp-repair.js';
import { lineChild } from '../helpers/line-child.js';
import { clientNetns } from '../helpers/net-probe.js';
import { has } from '../helpers/proc.js';

const skip = process.getuid?.() !== 0 ? 'needs root (nftables, network namespaces, TCP_REPAIR)' : !has('nft') ? 'needs nft'
  : !has('ss') ? 'needs ss (iproute2)' : !tcpRepairAvailable().ok ? `native addon: ${tcpRepairAvailable().reason}` : false;
const helper = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'silent-guest-socket.js');
const GUEST = 'srhush';
const TAG = 'srhushtest';
const HOST_ADDR = '10.250.79.1';
const GUEST_ADDR = '10.250.79.2';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Segments the host-side socket (local port `port`, peer port `peerPort`) has received (ss segs_in). */
function segsIn(port: number, peerPort: number): number {
  const out = execFileSync('ss', ['-tinH', 'src', `${HOST_ADDR}:${port}`, 'dst', `${GUEST_ADDR}:${peerPort}`]).toString();
  const m = /segs_in:(\d+)/.exec(out);
  if (!m) throw new Error(`no segs_in in ${JSON.stringify(out)}`);
  return Number(m[1]);
}

interface Outcome { before: number; after: number; retrans: string[]; got: () => string; restore: () => Promise<void> }

async function run(t: { after: (fn: () => unknown) => void }, withDrop: boolean): Promise<Outcome> {
  const ns = clientNetns({ name: 'hy-srhush', hostIf: 'hysrhush', hostAddr: HOST_ADDR, addr: GUEST_ADDR });
  await ns.remove();
  await ns.create();
  t.after(() => ns.remove());
  // the table as hylicsd makes it for this guest (with its address: the frozen sockets' drop rules), or without
  await createSteerTable(GUEST, TAG, withDrop ? GUEST_ADDR : undefined);
  t.after(() => removeSteerTable(GUEST, TAG));
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, HOST_ADDR, r));
  t.after(() => srv.close());
  const port = (srv.address() as AddressInfo).port;
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const { child, lines, next } = lineChild(t, ns.name, helper, [HOST_ADDR, String(port)]);
  const client = await accepted;
  t.after(() => client.destroy());
  let got = '';
  client.on('data', (d: Buffer) => { got += d.toString(); });
  const guestPort = Number((await next(/^local /)).split(' ')[1]);

  child.stdin.write('freeze\n');
  const frozen = await next(/^frozen /);
  assert.match(frozen, / 3000$/, `the state holds the 3000 bytes not acknowledged: ${frozen}`);
  assert.deepEqual(JSON.parse(frozen.split(' ')[1]!), { tos: 0, prio: 0 }, 'the socket\'s own IP_TOS and priority were saved');
  for (let i = 0; i < 200 && got.length < 3000; i++) await sleep(10);
  assert.equal(got.length, 3000, 'the bytes were sent once before the freeze');
  const before = segsIn(port, guestPort);
  const mark = lines.length;
  // two retransmissions of the frozen socket (its timers: a loss probe, then its RTO with back-off)
  await next(/^retrans /, mark);
  const first = lines.length;
  await next(/^retrans /, first);
  await sleep(50); // a packet on a veth pair arrives in microseconds
  const after = segsIn(port, guestPort);
  const restore = async (): Promise<void> => {
    child.stdin.write('restore\n');
    await next(/^restored$/);
    for (let i = 0; i < 400 && !got.endsWith('after'); i++) await sleep(25);
  };
  return { before, after, retrans: lines.slice(mark).filter((l) => l.startsWith('retrans')), got: () => got, restore };
}

test('without the drop rule a frozen socket\'s retransmissions reach the client (what the test looks at)', { skip }, async (t) => {
  const r = await run(t, false);
  assert.equal(await frozenDropped(GUEST, TAG), 0);
  assert.ok(r.after > r.before, `the client received the frozen socket's retransmissions: segs_in ${r.before} -> ${r.after} (${r.retrans.join(', ')})`);
});

test(`a frozen socket (DSCP ${FROZEN_TOS >> 2}) sends nothing that reaches the client; restored in place it sends normally`, { skip }, async (t) => {
  const r = await run(t, true);
  assert.equal(r.after, r.before, `no segment of the frozen socket reached the client (${r.retrans.join(', ')})`);
  assert.ok((await frozenDropped(GUEST, TAG)) >= 2, 'the table\'s rule dropped them (its counter)');
  await r.restore();
  assert.equal(r.got(), `${'a'.repeat(3000)}after`, 'the restored socket (its own DSCP again) carries the connection on, byte-exact');
});

interface Counts { before: number; after: number }

// The host's own frozen copy (sendDrainFreeze with silent, as hylicsd freezes it at a hand-back): its local address
// is the guest's, so the table's output rule drops its packets. Here the host's socket stands for that copy (the
// table made with the host's address as the "guest" address) and its peer is a server in the namespace.
const PEER = `const s = require('net').createServer((c) => { c.on('data', () => undefined); c.on('error', () => undefined); });
s.listen(0, process.argv[1], () => console.log('ready ' + s.address().port));`;

async function runHostCopy(t: { after: (fn: () => unknown) => void }, withDrop: boolean): Promise<Counts> {
  const ns = clientNetns({ name: 'hy-srhush', hostIf: 'hysrhush', hostAddr: HOST_ADDR, addr: GUEST_ADDR });
  await ns.remove();
  await ns.create();
  t.after(() => ns.remove());
  await createSteerTable(GUEST, TAG, withDrop ? HOST_ADDR : undefined);
  t.after(() => removeSteerTable(GUEST, TAG));
  const peer = spawn('ip', ['netns', 'exec', ns.name, NODE_BIN, '-e', PEER, GUEST_ADDR], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => { peer.stdout.destroy(); peer.kill('SIGKILL'); });
  const peerPort = await new Promise<number>((r) => createInterface({ input: peer.stdout }).once('line', (l) => r(Number(l.split(' ')[1]))));
  const dir = mkdtempSync(join(tmpdir(), 'hylics-hush-'));
  writeFileSync(join(dir, 'f'), Buffer.alloc(3000, 0x61));
  const file = openSync(join(dir, 'f'), 'r');
  t.after(() => { closeSync(file); rmSync(dir, { recursive: true, force: true }); });
  const sock = connect(peerPort, GUEST_ADDR);
  sock.on('error', () => undefined);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  t.after(() => sock.destroy()); // frozen: closes silently
  const fd = socketFd(sock)!;
  const localPort = sock.localPort!;
  const peer1 = async (field: string): Promise<number> => {
    const r = await ns.exec('ss', ['-tinH', 'src', `${GUEST_ADDR}:${peerPort}`, 'dst', `${HOST_ADDR}:${localPort}`]);
    const m = new RegExp(`${field}:(\\d+)`).exec(r.stdout.toString());
    return m ? Number(m[1]) : 0;
  };
  const retrans = (): number => {
    const out = execFileSync('ss', ['-tinH', 'src', `${HOST_ADDR}:${localPort}`]).toString();
    return Number(/bytes_retrans:(\d+)/.exec(out)?.[1] ?? 0);
  };
  // the peer's ACKs never reach the socket (its drop filter from before the send): what it sends stays unacknowledged
  dropFilter(fd, true);
  const opts = { stallMs: 10_000, drainMaxUnacked: 64 * 1024, freeze: true, silent: true, pollUs: 250 };
  const r = await sendDrainFreeze(fd, file, 0, 3000, opts);
  assert.equal(r.drained, 'ok');
  assert.equal(Buffer.byteLength(r.state?.sendQueue ?? '', 'base64'), 3000, 'frozen with the 3000 bytes unacknowledged');
  assert.equal(queues(fd).unsent, 0);
  for (let i = 0; i < 200 && (await peer1('bytes_received')) < 3000; i++) await sleep(10);
  assert.equal(await peer1('bytes_received'), 3000, 'the bytes were sent once before the freeze');
  const before = await peer1('segs_in');
  // two retransmissions of the frozen copy (its bytes_retrans grew twice; the bound only ends a test that hangs)
  let n = 0;
  for (let seen = retrans(), i = 0; n < 2 && i < 1000; i++, await sleep(20)) {
    const x = retrans();
    if (x !== seen) { seen = x; n++; }
  }
  assert.equal(n, 2, 'the frozen copy retransmitted (its timers run)');
  await sleep(50); // a packet on a veth pair arrives in microseconds
  return { before, after: await peer1('segs_in') };
}

test('without the drop rule the host\'s frozen copy\'s retransmissions reach the peer (what the test looks at)', { skip }, async (t) => {
  const r = await runHostCopy(t, false);
  assert.ok(r.after > r.before, `the peer received the frozen copy's retransmissions: segs_in ${r.before} -> ${r.after}`);
});

test('the host\'s frozen copy (sendDrainFreeze silent) sends nothing that reaches the peer', { skip }, async (t) => {
  const r = await runHostCopy(t, true);
  assert.equal(r.after, r.before, 'no segment of the frozen copy reached the peer');
  assert.ok((await frozenDropped(GUEST, TAG)) >= 2, 'the table\'s output rule dropped them (its counter)');
});
