// Socket offload with a microVM guest (docs/offload-socket.md, "microVM guests"; issue #10, "one run in a microVM
// guest"): a real daemon, a `--driver microvm` guest (QEMU, routed tap, the control channel over virtio-serial, so
// the frozen socket's state travels over it) running the example file server with --offload socket, a client
// network namespace behind the host and curl on the host itself. Bodies byte-exact (sha256) from 1 KiB to 16 MiB;
// further requests on the same keep-alive connection after each hand-back; the host's counters under
// `offload.socket` show the handoffs and no fallback; nothing left behind (steering sets empty, no host socket on
// the guest's address, no frozen socket in the guest); no RST from the guest's address in a capture on the client's
// link. The boot takes 1-2 minutes under TCG (where KVM does not work, the daemon's probe falls back to it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestView } from '../../src/core/api.js';
import { run, runRaw } from '../../src/os/exec.js';
import { CLOSE_MAX_MS, LINGER_MS } from '../../src/host/offload/socket.js';
import { QEMU } from '../../src/os/qemu.js';
import { steerTableName } from '../../src/os/nft-steer.js';
import { isProcessAlive } from '../../src/os/proc.js';
import { daemonTag } from '../../src/host/wiring.js';
import { hylics, startDaemon, stateDirCli, stopDaemon, tempStateDir } from '../helpers/cli.js';
import { clientNetns } from '../helpers/net-probe.js';
import { fileServerLine, has, killProcessesOf, rstsInCapture, socketOffloadSkip, waitForHttp, waitLeftOver } from '../helpers/socket-offload.js';

const skip = socketOffloadSkip(
  [() => has(QEMU), `needs QEMU (${QEMU}; apt-get install qemu-system-x86)`],
  [() => existsSync('/usr/lib/qemu/virtiofsd'), 'needs virtiofsd (/usr/lib/qemu/virtiofsd, from qemu-system-x86)'],
  [() => existsSync('/dev/net/tun'), 'needs /dev/net/tun (the guest\'s tap)'],
  // without /dev/kvm the guest runs under TCG only: minutes per boot, too slow to run by default
  [() => existsSync('/dev/kvm') || process.env.HYLICS_TEST_TCG === '1', 'needs /dev/kvm (HYLICS_TEST_TCG=1 runs it under TCG)'],
);

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** `guest rm` of a microVM (ACPI power-off, then QEMU killed) ends well within this; then the test kills. */
const RM_TIMEOUT_MS = 120_000;

test('socket offload: example file server in a microVM guest, client in another namespace and on the host', { skip, timeout: 900_000 }, async (t) => {
  const dir = await tempStateDir('hylics-sockvm-');
  const tag = `${process.pid % 100000}`;
  const g = `sv${tag}`;
  const oct = 16 + (process.pid % 200);
  const w = clientNetns({ name: `hylics-svw-${tag}`, hostIf: `hsv${tag}`, hostAddr: `10.249.${oct}.1`, addr: `10.249.${oct}.2` });
  const PORT = 8080;
  let daemon: ChildProcess | undefined = await startDaemon(dir);
  let capture: ChildProcess | undefined;
  let tap: string | undefined;
  const { withOpts, json, cli } = stateDirCli(dir);
  t.after(async () => {
    capture?.kill('SIGKILL');
    if (daemon) {
      await hylics(withOpts(['guest', 'rm', g]), { timeoutMs: RM_TIMEOUT_MS });
      await stopDaemon(daemon);
    }
    // whatever is still running of this test (a failed or timed-out run, a hung daemon): the QEMU and virtiofsd
    // the daemon started detached name this test's state dir in their command lines
    const killed = await killProcessesOf(dir);
    if (killed.length > 0) {
      t.diagnostic(`killed what was left running: ${killed.join(' ')}`);
      await sleep(500);
      if (tap) await runRaw('ip', ['link', 'delete', tap]);
    }
    for (const m of (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '').filter((p) => p.startsWith(`${dir}/`)).reverse())
      await runRaw('umount', ['-l', m]);
    await w.remove();
    await rm(dir, { recursive: true, force: true });
  });

  const v = await json<GuestView>('guest', 'create', g, '--driver', 'microvm', '--share-size', '48M', '--memory', '768M', '--cpus', '2', '--tier-idle', '0');
  const addr = v.address;
  const info = v.driverInfo as { qemuPid?: number; tap?: string; accelerator?: string; accelReason?: string };
  tap = info.tap;
  t.diagnostic(`accelerator: ${info.accelerator} (${info.accelReason})`);
  const files: Record<string, Buffer> = { '1k': randomBytes(1024), '64k': randomBytes(64 * 1024), '1m': randomBytes(MiB), '16m': randomBytes(16 * MiB) };
  for (const [name, b] of Object.entries(files)) await writeFile(join(v.share.path, name), b);

  // a timed-out test's body goes on running after its cleanup: create nothing more then
  t.signal.throwIfAborted();
  await w.create();

  // the example server in the guest, started through the agent over the virtio-serial channel
  const ex = await cli('guest', 'exec', g, '--', 'sh', '-c', fileServerLine(PORT, 'file-server.log'));
  assert.equal(ex.code, 0, ex.stderr);
  const serverLog = async (): Promise<string> => (await cli('guest', 'exec', g, '--', 'cat', '/run/hylics/file-server.log')).stdout;
  const base = `http://${addr}:${PORT}`;
  const inW = w.exec;
  // node starting in an emulated guest: up to a minute or two, and its first answers are slow (JIT, emulated): a
  // refused connection returns at once, an accepted one is given time (killed, it would be a client gone mid-send)
  await waitForHttp(inW, `${base}/1k`, { tries: 180, pauseMs: 1000, why: serverLog, signal: t.signal, timeoutMs: 120_000 });
  const rstFile = join(dir, 'rst.txt');
  if (has('tcpdump') && !t.signal.aborted) {
    capture = w.captureCloses(addr, rstFile);
    await sleep(1000);
  }
  const stats = async (): Promise<NonNullable<GuestView['offload']>['socket']> => (await json<GuestView>('guest', 'show', g)).offload!.socket;

  await t.test('byte-exact bodies 1 KiB .. 16 MiB, and Range, from a client namespace', async () => {
    for (const name of Object.keys(files)) {
      const r = await inW('curl', ['-sf', '-w', '%{stderr}%{speed_download}', `${base}/${name}`]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}\n${await serverLog()}`);
      assert.equal(sha(r.stdout), sha(files[name]!), `${name} byte-exact`);
      t.diagnostic(`${name}: ${(Number(r.stderr) / 1e6).toFixed(1)} MB/s (one curl, not a benchmark)`);
    }
    const part = await inW('curl', ['-sf', '-r', '1000-2999999', `${base}/16m`]);
    assert.equal(sha(part.stdout), sha(files['16m']!.subarray(1000, 3_000_000)), 'range');
  });

  await t.test('keep-alive: requests on the same connection after each hand-back, client namespace', async () => {
    const names = ['1m', '16m', '64k', '1k'];
    const outs = names.map((n) => join(dir, `ns-${n}`));
    const r = await inW('curl', ['-sf', '-w', '%{num_connects}\\n', ...names.flatMap((n, i) => ['-o', outs[i]!, `${base}/${n}`])]);
    assert.equal(r.code, 0, `${r.stderr}\n${await serverLog()}`);
    assert.deepEqual(r.stdout.toString().trim().split('\n').map(Number), [1, 0, 0, 0], 'one connection for four requests');
    for (const [i, n] of names.entries()) assert.equal(sha(await readFile(outs[i]!)), sha(files[n]!), `${n} byte-exact`);
  });

  await t.test('a client on the host itself: byte-exact, keep-alive after the hand-back', async () => {
    const names = ['16m', '1m'];
    const outs = names.map((n) => join(dir, `host-${n}`));
    const r = await run('curl', ['-sf', '--max-time', '120', '-w', '%{num_connects}\\n', ...names.flatMap((n, i) => ['-o', outs[i]!, `${base}/${n}`])], { timeoutMs: 150_000 }).catch((e: Error) => e);
    assert.ok(!(r instanceof Error), `curl on the host: ${String(r)}`);
    assert.deepEqual(r.stdout.trim().split('\n').map(Number), [1, 0], 'one connection for two requests');
    for (const [i, n] of names.entries()) assert.equal(sha(await readFile(outs[i]!)), sha(files[n]!), `${n} byte-exact`);
  });

  await t.test('counters: every body was a handoff, no fallback', async () => {
    const s = await stats();
    assert.ok(s.available, s.reason);
    // the wait for the server (1 KiB, at least once), 4 + 1 range + 4 + 2 above
    assert.ok(s.handoffs >= 12, `handoffs ${s.handoffs}`);
    assert.ok(s.bytes >= 3 * 16 * MiB + 2 * MiB, `bytes ${s.bytes}`);
    assert.deepEqual(s.fallbacks, {}, `no fallback\n${await serverLog()}`);
    assert.ok(s.latencyMs.p50 !== null && s.latencyMs.p99 !== null);
    t.diagnostic(`host-side handoff latency over ${s.latencyMs.count}: p50 ${s.latencyMs.p50.toFixed(1)} ms, p99 ${s.latencyMs.p99.toFixed(1)} ms`);
    assert.doesNotMatch(await serverLog(), /sent in the guest|failed/);
  });

  await t.test('nothing left: no steered flow, no host socket on the guest\'s address, no frozen socket in the guest', async () => {
    const left = await waitLeftOver(g, dir, addr, CLOSE_MAX_MS + LINGER_MS + 10_000);
    assert.deepEqual(left.flows, { hold: [], steer: [], back: [] }, 'no flow left in the steering sets');
    assert.deepEqual(left.socks, [], 'no host socket or kernel orphan on the guest\'s address');
    assert.equal((await stats()).inFlight, 0);
    // no client is connected now: an established socket in the guest would be a frozen one left behind
    const ss = await cli('guest', 'exec', g, '--', 'ss', '-Htn', 'state', 'established');
    assert.equal(ss.code, 0, ss.stderr);
    assert.equal(ss.stdout.trim(), '', 'no established (frozen) socket in the guest');
  });

  await t.test('no RST from the guest\'s address reached the client', async (st) => {
    if (!capture) { st.skip('needs tcpdump'); return; }
    await sleep(500);
    const { seen, afterClose } = await rstsInCapture(rstFile, addr);
    assert.deepEqual([...seen, ...afterClose], [], `RSTs from ${addr}`);
  });

  // removing the guest removes its steering table, and its QEMU is gone
  const rmr = await hylics(withOpts(['guest', 'rm', g]), { timeoutMs: RM_TIMEOUT_MS });
  assert.equal(rmr.code, 0, rmr.stderr);
  const table = await runRaw('nft', ['list', 'table', 'ip', steerTableName(g, daemonTag(dir))]);
  assert.notEqual(table.code, 0, 'steering table removed with the guest');
  if (info.qemuPid !== undefined) assert.equal(await isProcessAlive(info.qemuPid), false, 'QEMU gone with the guest');
  await stopDaemon(daemon);
  daemon = undefined;
});
