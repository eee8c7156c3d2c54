// TCP_REPAIR restores large queues whole: a real TCP connection in a network namespace of its own (lo, MTU 1500)
// dumped with hundreds of KiB in its send queue (sent, not acknowledged) or its receive queue (not read), restored
// on a new socket, and the peer gets every byte (sha256). Before the fix a send queue above ~100-150 KiB (a fresh
// socket's send buffer) blocked the restore forever: the bytes written in repair mode stay charged to the buffer
// until the peer acknowledges them after the thaw. The work runs in a child (test/helpers/tcp-repair-queue.ts)
// because the restore is synchronous; a watchdog ends a child that hangs (a failure, not a timing assertion).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_QUEUE_BYTES } from '../../src/core/protocol/index.js';
import { HANDBACK_MAX_UNACKED_SEGMENTS } from '../../src/host/offload/socket.js';
import { NODE_BIN } from '../../src/os/self.js';
import { tcpRepairAvailable } from '../../src/os/tcp-repair.js';

const helper = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'tcp-repair-queue.js');
const skip = process.getuid?.() !== 0
  ? 'needs root (TCP_REPAIR needs CAP_NET_ADMIN; unshare -n for a network namespace)'
  : !tcpRepairAvailable().ok ? `native addon: ${tcpRepairAvailable().reason}`
    : !existsSync('/usr/bin/unshare') && !existsSync('/bin/unshare') ? 'needs unshare (util-linux)' : false;
/** Ends a child whose restore hangs (the bug this file is about); far above a healthy run's time. */
const WATCHDOG_MS = 60_000;

interface Outcome {
  mode?: string; size?: number; queued?: number; unsent?: number; got?: number; same?: boolean; error?: string;
  hung?: boolean; tailUnsent?: number;
}

function runInNetns(mode: 'send' | 'recv' | 'cap' | 'tail', size: number): Promise<Outcome> {
  return new Promise((resolve) => {
    // no slow start after the warm-up's idle moment: the `tail` mode's server sends all its segments unacknowledged
    const script = 'ip link set lo up mtu 1500 && sysctl -qw net.ipv4.tcp_slow_start_after_idle=0 && exec "$0" "$@"';
    const argv = ['-n', 'sh', '-c', script, NODE_BIN, helper, mode, String(size)];
    const p = spawn('unshare', argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let hung = false;
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const dog = setTimeout(() => { hung = true; p.kill('SIGKILL'); }, WATCHDOG_MS);
    p.on('close', () => {
      clearTimeout(dog);
      const line = out.trim().split('\n').pop() ?? '';
      try { resolve({ ...(JSON.parse(line) as Outcome), hung }); } catch { resolve({ error: `no result: ${JSON.stringify(out)}`, hung }); }
    });
  });
}

for (const size of [256 * 1024, 2 * 1024 * 1024]) {
  test(`a send queue of ${size >> 10} KiB sent and not acknowledged is restored whole: the peer gets every byte`, { skip }, async () => {
    const r = await runInNetns('send', size);
    assert.equal(r.hung, false, 'the restore blocked (the child was ended by the watchdog)');
    assert.equal(r.error, undefined);
    assert.ok((r.queued ?? 0) - (r.unsent ?? 0) > 200 * 1024, `more than a fresh socket's send buffer was in flight: ${JSON.stringify(r)}`);
    assert.equal(r.got, size);
    assert.equal(r.same, true, 'byte-exact (sha256)');
  });
}

test('a receive queue of 2 MiB not yet read is restored whole', { skip }, async () => {
  const r = await runInNetns('recv', 2 * 1024 * 1024);
  assert.equal(r.hung, false);
  assert.equal(r.error, undefined);
  assert.equal(r.queued, 2 * 1024 * 1024);
  assert.equal(r.got, 2 * 1024 * 1024);
  assert.equal(r.same, true, 'byte-exact (sha256)');
});

// socket offload: while the host holds a connection nobody reads its socket; a client that pipelines a lot meanwhile
// filled its receive queue up to the window the guest had grown (MiBs), and the hand-back's state could not carry
// it (MAX_QUEUE_BYTES per queue, the frame cap). The host's copy is restored with its receive queue capped: the rest
// waits at the client, and the guest, restored from the capped state, reads every byte.
test('a socket restored as the host restores it takes in at most MAX_QUEUE_BYTES unread; the rest comes after', { skip }, async () => {
  const size = 2 * 1024 * 1024;
  const r = await runInNetns('cap', size);
  assert.equal(r.hung, false);
  assert.equal(r.error, undefined);
  assert.ok((r.queued ?? 0) > 0, `the client's bytes reached the host's copy: ${JSON.stringify(r)}`);
  assert.ok((r.queued ?? Infinity) <= MAX_QUEUE_BYTES, `the held receive queue fits a state: ${JSON.stringify(r)}`);
  assert.equal(r.got, size, 'every byte reached the guest\'s restored socket');
  assert.equal(r.same, true, 'byte-exact (sha256)');
});

// The hand-back's tail (docs/offload-socket.md, HANDBACK_MAX_UNACKED_SEGMENTS): the guest's restored socket counts
// the bytes the host left unacknowledged as in flight against a fresh congestion window, and the answer to its
// thaw's window probe may never come (the client answers out-of-window segments at most once per 500 ms, and PAWS
// may drop the probe). With as many unacknowledged segments as the host may leave, the tail must leave at once
// without any ACK; with more than the initial window (the 64 KiB the host used to leave) it is held back, which
// cost ~200 ms per affected handoff (until the restored socket's loss probe) in the socket-offload bench.
// the host's cap in bytes is HANDBACK_MAX_UNACKED_SEGMENTS x the state's MSS (the clamp, 1460 on this link), in the
// link's 1448-byte segments (timestamps on): 7
const capSegments = Math.ceil((HANDBACK_MAX_UNACKED_SEGMENTS * 1460) / 1448);
test(`a restored socket with ${capSegments} segments unacknowledged (the host's cap) sends the tail without waiting for an ACK`, { skip }, async () => {
  const r = await runInNetns('tail', capSegments);
  assert.equal(r.error, undefined);
  assert.equal(r.queued, capSegments * 1448, `the state held the unacknowledged bytes: ${JSON.stringify(r)}`);
  assert.equal(r.unsent, 0, `all of them sent before the dump: ${JSON.stringify(r)}`);
  assert.equal(r.tailUnsent, 0, `the tail left at once: ${JSON.stringify(r)}`);
});

test('a restored socket with 45 segments (64 KiB) unacknowledged holds the tail until an ACK (why the cap)', { skip }, async () => {
  const r = await runInNetns('tail', 45);
  assert.equal(r.error, undefined);
  assert.equal(r.queued, 45 * 1448);
  assert.equal(r.unsent, 0, `all of them sent before the dump: ${JSON.stringify(r)}`);
  assert.equal(r.tailUnsent, 1, `held by the initial congestion window: ${JSON.stringify(r)}`);
});
