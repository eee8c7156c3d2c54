// The held hand-back's `back` set (src/os/nft-steer.ts, docs/offload-socket.md): the client's packets of the flow
// are dropped on the host until the guest's thawed socket sends its first packet, the window probe of its thaw,
// which deletes the element in the packet path. The guest's frozen socket still runs its timers: frozen with bytes
// not yet acknowledged (the quiesce lets up to 64 KiB through), it retransmits them on its RTO, and before the fix
// such a stale retransmission deleted the element too, ending the hold while the guest was still swapping sockets
// (a client segment meeting only the listener then: an RST). A real connection between the host (the client's
// side) and a guest network namespace; the wait for the retransmission is a wait for an event the guest reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSteerTable, listSteerFlows, moveFlow, removeSteerTable, type Flow } from '../../src/os/nft-steer.js';
import { tcpRepairAvailable } from '../../src/os/tcp-repair.js';
import { lineChild } from '../helpers/line-child.js';
import { clientNetns } from '../helpers/net-probe.js';
import { has } from '../helpers/proc.js';

const skip = process.getuid?.() !== 0 ? 'needs root (nftables, network namespaces, TCP_REPAIR)' : !has('nft') ? 'needs nft'
  : !has('ss') ? 'needs ss (iproute2)' : !tcpRepairAvailable().ok ? `native addon: ${tcpRepairAvailable().reason}` : false;
const helper = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'frozen-guest-socket.js');
const GUEST = 'srback';
const TAG = 'srbacktest';
const HOST_ADDR = '10.250.77.1';
const GUEST_ADDR = '10.250.77.2';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('back: a stale retransmission of the guest\'s frozen socket keeps the hold; its thawed socket\'s probe ends it', { skip }, async (t) => {
  const ns = clientNetns({ name: 'hy-srback', hostIf: 'hysrback', hostAddr: HOST_ADDR, addr: GUEST_ADDR });
  await ns.remove();
  await ns.create();
  t.after(() => ns.remove());
  await createSteerTable(GUEST, TAG);
  t.after(() => removeSteerTable(GUEST, TAG));
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, HOST_ADDR, r));
  t.after(() => srv.close());
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const port = (srv.address() as AddressInfo).port;
  const { child, lines, next } = lineChild(t, ns.name, helper, [HOST_ADDR, String(port)]);
  const client = await accepted;
  t.after(() => client.destroy());
  let got = '';
  client.on('data', (d: Buffer) => { got += d.toString(); });
  const flow: Flow = { guestAddr: GUEST_ADDR, guestPort: Number((await next(/^local /)).split(' ')[1]), clientAddr: HOST_ADDR, clientPort: client.localPort! };
  const el = `${GUEST_ADDR} . ${flow.guestPort} . ${HOST_ADDR} . ${flow.clientPort}`;

  child.stdin.write('freeze\n');
  await next(/^frozen$/);
  await moveFlow(GUEST, flow, 'back', TAG); // the host handed back: hold the flow until the guest's thawed socket sends
  const mark = lines.length;
  await next(/^retrans /, mark); // the frozen socket retransmitted its unacknowledged bytes (its RTO, ~200 ms+)
  assert.deepEqual((await listSteerFlows(GUEST, TAG)).back, [el], 'a retransmission of the frozen socket left the hold in place');

  child.stdin.write('thaw\n');
  await next(/^thawed$/);
  for (let i = 0; i < 200 && (await listSteerFlows(GUEST, TAG)).back.length > 0; i++) await sleep(50);
  assert.deepEqual((await listSteerFlows(GUEST, TAG)).back, [], 'the thawed socket\'s first packet ended the hold');
  for (let i = 0; i < 200 && !got.endsWith('after'); i++) await sleep(50);
  assert.equal(got, `${'a'.repeat(3000)}after`, 'the connection carries on byte-exact');
  client.destroy();
});
