// Child process of test/os/frozen-silent.test.ts, run in the "guest" network namespace: one TCP connection to the
// test (the flow's client), frozen as the guest side of socket offload freezes it (freezeSilent), driven by lines
// on stdin.
//   freeze:  drop filter on (the client's ACKs never reach the socket), 3000 bytes written (sent, never
//            acknowledged), then freezeSilent: a frozen socket with bytes in flight, which it retransmits on its
//            timers (TCP_REPAIR does not stop them), its packets with FROZEN_DSCP; prints "frozen", then
//            "retrans N" each time its retransmitted bytes (ss) grow.
//   restore: the state restored in place (the same socket, as a hand-back restores it) with its own IP_TOS again,
//            thawed, then "after" written on it; prints "restored".
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { nativeAddon } from '../../src/os/native.js';
import { freezeSilent, restoreForHandoff, type SavedTos } from '../../src/os/tcp-repair.js';
import type { TcpStateT } from '../../src/core/protocol/ops/offload.js';

const a = nativeAddon().addon!;
const [host, port] = process.argv.slice(2);
const sock = connect(Number(port), host);
sock.on('error', () => undefined);
sock.once('connect', () => process.stdout.write(`local ${sock.localPort}\n`));
let frozen: { state: TcpStateT; saved: SavedTos } | undefined;
let timer: NodeJS.Timeout | undefined;
const retrans = (): number => {
  const out = execFileSync('ss', ['-tinH', 'sport', `= :${sock.localPort}`]).toString();
  return Number(/bytes_retrans:(\d+)/.exec(out)?.[1] ?? 0);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
createInterface({ input: process.stdin }).on('line', (cmd) => {
  const h = (sock as unknown as { _handle: { fd: number; readStop(): void } })._handle;
  if (cmd === 'freeze') {
    a.dropFilter(h.fd, true);
    h.readStop();
    sock.write(Buffer.alloc(3000, 0x61), () => void (async () => {
      for (let i = 0; i < 500 && a.tcpQueues(h.fd).unsent > 0; i++) await sleep(2);
      frozen = freezeSilent(h.fd);
      process.stdout.write(`frozen ${JSON.stringify(frozen.saved)} ${Buffer.byteLength(frozen.state.sendQueue, 'base64')}\n`);
      let last = retrans();
      timer = setInterval(() => { const n = retrans(); if (n !== last) { last = n; process.stdout.write(`retrans ${n}\n`); } }, 20);
    })());
  } else if (cmd === 'restore' && frozen) {
    clearInterval(timer);
    restoreForHandoff(frozen.state, h.fd, { inPlace: true, saved: frozen.saved });
    sock.write('after', () => process.stdout.write('restored\n'));
  }
});
