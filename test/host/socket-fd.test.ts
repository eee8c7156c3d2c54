// Socket offload for apps in other languages (docs/offload-socket.md, "Other languages"; issue #10 item 1): a
// Python HTTP/1.1 server (contrib/offload/file_server.py) in a sandbox guest, started WITHOUT CAP_NET_ADMIN, hands
// its sockets to the guest agent with SCM_RIGHTS (over /run/hylics/offload.sock, and through the in-guest
// `hylics offload sendfile --fd N`); the agent does the TCP_REPAIR handoff and restores the connection on the
// app's own socket. curl from a client namespace: bodies byte-exact, keep-alive on one connection after the
// hand-backs, handoffs counted by the host, no fallback, no RST from the guest's address, nothing left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestView } from '../../src/core/api.js';
import { run } from '../../src/os/exec.js';
import { listSteerFlows } from '../../src/os/nft-steer.js';
import { PACKAGE_ROOT } from '../../src/os/self.js';
import { daemonTag } from '../../src/host/wiring.js';
import { hylics, startDaemon, stateDirCli, stopDaemon, tempStateDir } from '../helpers/cli.js';
import { clientNetns } from '../helpers/net-probe.js';
import { has, socketOffloadSkip } from '../helpers/socket-offload.js';

const python = (): string | undefined => ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => { try { execFileSync(p, ['-c', 'import socket; socket.send_fds'], { stdio: 'ignore' }); return true; } catch { return false; } });
const skip = socketOffloadSkip(
  [() => has('tcpdump'), 'needs tcpdump'],
  [() => has('capsh'), 'needs capsh (libcap2-bin)'],
  [() => python() !== undefined, 'needs python3 >= 3.9 (socket.send_fds) in /usr/bin or /usr/local/bin'],
);

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('socket offload for a Python app: SCM_RIGHTS to the agent, and the in-guest CLI with an inherited fd', { skip, timeout: 600_000 }, async (t) => {
  const dir = await tempStateDir('hylics-sockfd-');
  const tag = `${process.pid % 100000}`;
  const g = `sd${tag}`;
  const oct = 16 + ((process.pid + 50) % 200);
  const w = clientNetns({ name: `hylics-sdw-${tag}`, hostIf: `hsd${tag}`, hostAddr: `10.251.${oct}.1`, addr: `10.251.${oct}.2` });
  const PORTS = { socket: 8090, cli: 8091 } as const;
  let daemon: ChildProcess | undefined = await startDaemon(dir);
  let capture: ChildProcess | undefined;
  const { withOpts, json } = stateDirCli(dir);
  t.after(async () => {
    capture?.kill('SIGKILL');
    if (daemon) { await hylics(withOpts(['guest', 'rm', g])); await stopDaemon(daemon); daemon = undefined; }
    await w.remove();
    await rm(dir, { recursive: true, force: true });
  });

  const v = await json<GuestView>('guest', 'create', g, '--share-size', '64M', '--memory', '512M');
  const addr = v.address;
  const guestNetns = String(v.driverInfo.netns);
  const files: Record<string, Buffer> = { '1k': randomBytes(1024), '1m': randomBytes(MiB), '10m': randomBytes(10 * MiB) };
  for (const [name, b] of Object.entries(files)) await writeFile(join(v.share.path, name), b);

  await w.create();

  // the Python app, without CAP_NET_ADMIN: only the agent can freeze sockets
  const script = join(PACKAGE_ROOT, 'contrib', 'offload', 'file_server.py');
  const start = Object.entries(PORTS).map(([via, port]) => `capsh --drop=cap_net_admin -- -c 'exec "$0" "$@"' ${python()} ${script} --root /mnt/hylics --port ${port} --via ${via} > /run/hylics/py-${via}.log 2>&1 &`).join(' ');
  const ex = await hylics(withOpts(['guest', 'exec', g, '--', 'sh', '-c', start]));
  assert.equal(ex.code, 0, ex.stderr);
  const appLog = (via: string): Promise<string> => readFile(join(dir, 'guests', g, 'run', `py-${via}.log`), 'utf8').catch(() => '');
  const inW = w.exec;
  for (const [via, port] of Object.entries(PORTS)) {
    for (let i = 0; ; i++) {
      const r = await inW('curl', ['-sf', '-o', '/dev/null', `http://${addr}:${port}/1k`], 10_000);
      if (r.code === 0) break;
      assert.ok(i < 100, `the Python server (${via}) did not come up: ${r.stderr}\n${await appLog(via)}`);
      await sleep(300);
    }
  }
  const rstFile = join(dir, 'rst.txt');
  capture = w.captureRsts(addr, rstFile);
  await sleep(1000);
  const stats = async (): Promise<NonNullable<GuestView['offload']>['socket']> => (await json<GuestView>('guest', 'show', g)).offload!.socket;

  for (const [via, port] of Object.entries(PORTS)) {
    await t.test(`${via}: byte-exact bodies sent by the host, three requests on one keep-alive connection`, async () => {
      const before = await stats();
      const base = `http://${addr}:${port}`;
      const outs = ['1m', '10m', '1k'].map((n) => join(dir, `${via}-${n}`));
      const r = await inW('curl', ['-sf', '-w', '%{num_connects}\\n', '-o', outs[0]!, `${base}/1m`, '-o', outs[1]!, `${base}/10m`, '-o', outs[2]!, `${base}/1k`]);
      assert.equal(r.code, 0, `${r.stderr}\n${await appLog(via)}`);
      const connects = r.stdout.toString().trim().split('\n').map(Number);
      assert.deepEqual(connects, [1, 0, 0], `one connection for three requests\n${await appLog(via)}`);
      for (const [i, n] of ['1m', '10m', '1k'].entries()) assert.equal(sha(await readFile(outs[i]!)), sha(files[n]!), `${n} byte-exact`);
      const after = await stats();
      assert.ok(after.handoffs - before.handoffs >= 3, `handoffs ${before.handoffs} -> ${after.handoffs}\n${await appLog(via)}`);
      assert.ok(after.bytes - before.bytes >= 11 * MiB, 'bytes sent by the host');
      assert.deepEqual(after.fallbacks, before.fallbacks, `no fallback\n${await appLog(via)}`);
      assert.match(await appLog(via), /\/10m 10485760 bytes by host/);
    });
  }

  await t.test('nothing left: no flow in the steering sets, no host socket on the guest\'s address, no frozen socket in the guest', async () => {
    let last = '';
    for (let i = 0; i < 40; i++) {
      const flows = await listSteerFlows(g, daemonTag(dir));
      const host = (await run('ss', ['-Htn', 'state', 'established', 'src', addr])).stdout.trim();
      const guest = (await run('ip', ['netns', 'exec', guestNetns, 'ss', '-Htn', 'state', 'established'])).stdout.trim();
      last = JSON.stringify({ flows, host, guest });
      if (flows.hold.length + flows.steer.length + flows.back.length === 0 && host === '' && guest === '') return;
      await sleep(250);
    }
    assert.fail(`left over: ${last}`);
  });

  await t.test('no RST from the guest\'s address reached the client', async () => {
    await sleep(500);
    assert.equal((await readFile(rstFile, 'utf8')).trim(), '');
  });
});
