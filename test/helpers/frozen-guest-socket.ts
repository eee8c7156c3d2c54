// Child process of test/os/nft-steer-back.test.ts, run in the "guest" network namespace: one TCP connection to the
// test (the flow's client), driven by lines on stdin, as the guest side of socket offload handles it.
//   freeze: drop filter on (the client's ACKs never reach the socket), 3000 bytes written (sent, never
//           acknowledged), TCP_REPAIR on and dump: a frozen socket with bytes in flight, which it retransmits on
//           its RTO (a frozen socket's timers still run); prints "frozen", then "retrans N" each time its
//           retransmitted bytes (ss) grow.
//   thaw:   the frozen socket closed silently, the state restored on a new socket behind the filter, detached right
//           before the thaw (whose window probe is its first packet), then "after" written on it; prints "thawed".
import { execFileSync } from 'node:child_process';
import { connect, Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { nativeAddon, type NativeTcpState } from '../../src/os/native.js';

const a = nativeAddon().addon!;
const [host, port] = process.argv.slice(2);
const sock = connect(Number(port), host);
sock.on('error', () => undefined);
sock.once('connect', () => process.stdout.write(`local ${sock.localPort}\n`));
let state: NativeTcpState | undefined;
let timer: NodeJS.Timeout | undefined;
const retrans = (): number => {
  const out = execFileSync('ss', ['-tin', 'sport', `= :${sock.localPort}`]).toString();
  return Number(/bytes_retrans:(\d+)/.exec(out)?.[1] ?? 0);
};
createInterface({ input: process.stdin }).on('line', (cmd) => {
  const fd = (sock as unknown as { _handle: { fd: number; readStop(): void } })._handle.fd;
  if (cmd === 'freeze') {
    a.dropFilter!(fd, true);
    (sock as unknown as { _handle: { readStop(): void } })._handle.readStop();
    sock.write(Buffer.alloc(3000, 0x61), () => {
      state = a.tcpRepairDump(fd);
      process.stdout.write('frozen\n');
      let last = retrans();
      timer = setInterval(() => { const n = retrans(); if (n !== last) { last = n; process.stdout.write(`retrans ${n}\n`); } }, 20);
    });
  } else if (cmd === 'thaw' && state) {
    clearInterval(timer);
    a.closeFd(fd); // frozen: silently
    const nfd = a.tcpRepairRestore(state, { dropFilter: true });
    const s = new Socket({ fd: nfd, readable: true, writable: true });
    s.on('error', () => undefined);
    s.write('after', () => process.stdout.write('thawed\n'));
  }
});
