import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { crunRootDir, rootfsKey, SandboxDriver, sandboxCgroupName, sandboxExecArgv, type SandboxState } from '../../../src/host/drivers/sandbox.js';
import { containerState } from '../../../src/os/crun.js';
import { rootfsPaths } from '../../../src/os/rootfs.js';
import type { DriverContext } from '../../../src/host/drivers/types.js';
import { ShareManager } from '../../../src/host/share-manager.js';
import { Cgroup } from '../../../src/os/cgroup.js';
import { run, runRaw } from '../../../src/os/exec.js';
import { linkExists, netnsExists } from '../../../src/os/netns.js';
import { readMounts } from '../../../src/os/mount.js';
import { isProcessAlive, nsPids } from '../../../src/os/proc.js';
import { isHylicsError } from '../../../src/core/errors/index.js';
import { MiB } from '../../../src/core/units.js';

const skip = process.getuid?.() !== 0 ? 'needs root (namespaces, cgroups, mounts)' : false;
const log = pino({ level: 'silent' });
const PORT = 7000;
// a guest program: answers every TCP connection with its name and its pid as seen inside the guest
const SERVER = `require('net').createServer((s) => s.end(process.env.HYLICS_GUEST_NAME + ' ' + process.pid)).listen(${PORT})`;
const serverCommand = (): string[] => [process.execPath, '-e', SERVER];

let seq = 0;
interface Guest { ctx: DriverContext; sm: ShareManager }

interface Fixture { stateDir: string; guests: Guest[] }

/** A state dir for one test; its after-hook cleans up the guests (driver objects, shares) before removing it. */
async function fixture(t: { after: (fn: () => Promise<void>) => void }): Promise<Fixture> {
  const f: Fixture = { stateDir: await mkdtemp(join(tmpdir(), `hylics-sbx-${process.pid}-`)), guests: [] };
  t.after(async () => {
    for (const g of f.guests) {
      await new SandboxDriver().cleanup(g.ctx, undefined).catch(() => undefined);
      await g.sm.destroy(g.ctx.spec.name).catch(() => undefined);
    }
    if ((await readMounts()).some((m) => m.mountPoint.startsWith(f.stateDir))) return; // never rm -r into a mount
    await rm(f.stateDir, { recursive: true, force: true });
  });
  return f;
}

async function newGuest(f: Fixture, shareBytes = 4 * MiB): Promise<Guest> {
  const stateDir = f.stateDir;
  const i = seq++;
  const tag = `${process.pid % 100000}${i}`;
  const name = `t${tag}`;
  const sm = new ShareManager({ stateDir });
  await sm.create(name, shareBytes);
  const dir = join(stateDir, 'guests', name);
  const oct = (process.pid % 200) + 20;
  const ctx: DriverContext = {
    spec: { name, driver: 'sandbox', shareSizeBytes: shareBytes, cpus: 0.5, memoryBytes: 256 * MiB },
    paths: { dir, share: sm.path(name), run: join(dir, 'run'), logs: join(dir, 'logs') },
    network: { index: i, hostIf: `hyth${tag}`, guestIf: `hytg${tag}`, hostAddr: `10.251.${oct}.${4 * i + 1}`, guestAddr: `10.251.${oct}.${4 * i + 2}`, prefixLen: 30, netns: `hylics-test-${tag}` },
    stateDir,
    log,
  };
  const g = { ctx, sm };
  f.guests.push(g);
  return g;
}

function inGuest(state: SandboxState, script: string) {
  const argv = sandboxExecArgv(state, ['sh', '-c', script]);
  return runRaw(argv[0]!, argv.slice(1));
}

function tcpRead(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let buf = '';
    s.setTimeout(3000, () => { s.destroy(); reject(new Error('timeout')); });
    s.on('data', (d) => { buf += d.toString(); });
    s.on('end', () => resolve(buf));
    s.on('error', reject);
  });
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 15000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try { const v = await fn(); if (ok(v)) return v; last = v; } catch (e) { last = e; }
    if (Date.now() > until) throw new Error(`${what}: last ${String(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function assertNothingLeft(ctx: DriverContext): Promise<void> {
  assert.equal(await netnsExists(ctx.network.netns), false, 'netns left');
  assert.equal(await linkExists(ctx.network.hostIf), false, 'veth left');
  assert.equal(await (await Cgroup.open(sandboxCgroupName(ctx))).exists(), false, 'cgroup left');
  const mounts = await readMounts();
  assert.ok(!mounts.some((m) => m.mountPoint.includes(ctx.network.netns)), 'netns mount left');
  assert.ok(!mounts.some((m) => m.mountPoint.startsWith(rootfsPaths(rootfsKey(ctx)).dir)), 'rootfs mount left');
  assert.equal(await containerState(crunRootDir(ctx.stateDir), ctx.spec.name), undefined, 'container left');
}

test('sandbox guest lifecycle: limits, files both ways, isolation, ENOSPC, network, agent restart, stop, cleanup', { skip }, async (t) => {
  const f = await fixture(t);
  const stateDir = f.stateDir;
  const a = await newGuest(f, 4 * MiB);
  const b = await newGuest(f, 4 * MiB); // another guest's share, mounted before a starts
  await writeFile(join(b.ctx.paths.share, 'secret'), 'b only');
  const driver = new SandboxDriver({ command: serverCommand, watchIntervalMs: 50 });
  await driver.preflight();
  const state = await driver.start(a.ctx);
  const ctx = a.ctx;
  let exitReason: string | undefined;
  const unwatch = driver.watch(ctx, state, (r) => { exitReason = r; });
  t.after(unwatch);
  assert.ok(await driver.alive(ctx, state));
  assert.deepEqual(driver.channel(ctx, state), { mode: 'listen', path: join(ctx.paths.run, 'channel.sock') });
  assert.equal(driver.describe(ctx, state).guestAddr, ctx.network.guestAddr);

  // cgroup: limits read back, the guest's processes are in it
  const cg = await Cgroup.open(sandboxCgroupName(ctx));
  const lim = await cg.limits();
  assert.equal(lim.cpus, 0.5);
  assert.equal(lim.memoryBytes, 256 * MiB);
  assert.ok((await cg.pids()).includes(state.initPid));

  // network: the guest's server answers on its veth address; it runs as pid 2 of its own pid namespace
  const hello = await eventually(() => tcpRead(ctx.network.guestAddr, PORT), (s) => s.length > 0, 'guest server');
  const m = new RegExp(`^${ctx.spec.name} (\\d+)$`).exec(hello);
  assert.ok(m, hello);
  const firstPid = m[1]!;
  assert.deepEqual((await nsPids(state.initPid))?.slice(-1), [1]); // the init is pid 1 of its own pid namespace
  assert.ok((await nsPids(state.initPid))!.length >= 2);
  const route = await inGuest(state, 'ip route show default');
  assert.match(route.stdout, new RegExp(`default via ${ctx.network.hostAddr.replace(/\./g, '\\.')}`));

  // files both ways through the share; the run dir is at /run/hylics
  await writeFile(join(ctx.paths.share, 'from-host'), 'hello guest');
  assert.equal((await inGuest(state, 'cat /mnt/hylics/from-host')).stdout, 'hello guest');
  await run(sandboxExecArgv(state, ['sh', '-c', 'echo -n hello host > /mnt/hylics/from-guest'])[0]!, sandboxExecArgv(state, ['sh', '-c', 'echo -n hello host > /mnt/hylics/from-guest']).slice(1));
  assert.equal(await readFile(join(ctx.paths.share, 'from-guest'), 'utf8'), 'hello host');
  await writeFile(join(ctx.paths.run, 'marker'), 'run');
  assert.equal((await inGuest(state, 'cat /run/hylics/marker')).stdout, 'run');
  // the channel socket lives in the run dir: a socket re-created there (a restarted daemon) is reached by the guest
  for (const greeting of ['first daemon', 'restarted daemon']) {
    const sock = join(ctx.paths.run, 'channel.sock');
    await rm(sock, { force: true });
    const srv = createServer((c) => c.end(greeting));
    await new Promise<void>((r) => srv.listen(sock, r));
    try {
      const r = await inGuest(state, `${process.execPath} -e "require('net').connect('/run/hylics/channel.sock').on('data', (d) => process.stdout.write(d))"`);
      assert.equal(r.stdout, greeting);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  }

  // isolation: the state dir is empty in the guest, b's share is nowhere in its mount table
  assert.equal((await inGuest(state, `ls -A ${stateDir}`)).stdout, '');
  assert.notEqual((await inGuest(state, `cat ${join(b.ctx.paths.share, 'secret')}`)).code, 0);
  const guestMounts = await readMounts(state.initPid);
  assert.ok(!guestMounts.some((m) => m.source === `hylics-share-${b.ctx.spec.name}`), 'b share mounted in a');
  assert.ok(guestMounts.some((m) => m.mountPoint === '/mnt/hylics' && m.source === `hylics-share-${ctx.spec.name}`));
  assert.ok(!guestMounts.some((m) => m.fsType === 'nsfs'), 'netns handles visible in the guest');

  // the guest program runs without CAP_SYS_ADMIN (no mounts, no setns) but with CAP_NET_ADMIN (TCP_REPAIR);
  // it sees its own read-only sysfs (its interfaces only, no cgroup file systems)
  let serverPid: number | undefined;
  for (const pid of await cg.pids()) {
    if ((await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes('createServer')) serverPid = pid;
  }
  assert.ok(serverPid !== undefined);
  const capBnd = BigInt('0x' + /^CapBnd:\s+([0-9a-f]+)$/m.exec(await readFile(`/proc/${serverPid}/status`, 'utf8'))![1]!);
  assert.equal((capBnd >> 21n) & 1n, 0n, 'CAP_SYS_ADMIN kept');
  assert.equal((capBnd >> 12n) & 1n, 1n, 'CAP_NET_ADMIN dropped');
  assert.deepEqual((await inGuest(state, 'ls /sys/class/net')).stdout.split(/\s+/).filter(Boolean).sort(), [ctx.network.guestIf, 'lo'].sort());
  assert.equal((await inGuest(state, 'ls -A /sys/fs/cgroup')).stdout, '');

  // ENOSPC inside the guest when the share is full; a resize on the host is seen inside at once
  const full = await inGuest(state, 'dd if=/dev/zero of=/mnt/hylics/big bs=1M count=8 2>&1');
  assert.notEqual(full.code, 0);
  assert.match(full.stdout, /No space left on device/);
  await inGuest(state, 'rm /mnt/hylics/big');
  await a.sm.resize(ctx.spec.name, 16 * MiB);
  assert.match((await inGuest(state, 'df -k /mnt/hylics | tail -1')).stdout, /\s16384\s/);

  // the supervised program killed: the init restarts it (pid changes), the guest lives on
  await inGuest(state, `kill -9 ${firstPid}`);
  const again = await eventually(() => tcpRead(ctx.network.guestAddr, PORT), (s) => s.length > 0 && !s.endsWith(` ${firstPid}`), 'restarted server');
  assert.match(again, new RegExp(`^${ctx.spec.name} \\d+$`));
  assert.ok(await driver.alive(ctx, state));
  assert.match(await readFile(state.logFile, 'utf8'), /restarting in 1s/);

  // stats are readable
  const st = await cg.stats();
  assert.ok(st.cpuUsageNs > 0 && st.memoryBytes > 0 && st.pids >= 2);

  await driver.stop(ctx, state, 5000);
  assert.equal(await driver.alive(ctx, state), false);
  await eventually(async () => exitReason, (r) => r !== undefined, 'watch noticed the exit', 5000);
  await driver.cleanup(ctx, state);
  await driver.cleanup(ctx, state); // idempotent
  await assertNothingLeft(ctx);
  // the share and its data are the daemon's: still there
  assert.equal(await readFile(join(ctx.paths.share, 'from-guest'), 'utf8'), 'hello host');
});

test('the guest keeps running after the process that started it is killed (-9), and is found again', { skip }, async (t) => {
  const f = await fixture(t);
  const g = await newGuest(f);
  const { ctx } = g;
  const driverUrl = new URL('../../../src/host/drivers/sandbox.js', import.meta.url).href;
  const code = `
    import { SandboxDriver } from ${JSON.stringify(driverUrl)};
    import { pino } from 'pino';
    const ctx = JSON.parse(process.env.CTX); ctx.log = pino({ level: 'silent' });
    const state = await new SandboxDriver({ command: () => [process.execPath, '-e', ${JSON.stringify(SERVER)}] }).start(ctx);
    process.stdout.write(JSON.stringify(state), () => process.kill(process.pid, 'SIGKILL'));`;
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', code], {
    cwd: process.cwd(), env: { ...process.env, CTX: JSON.stringify({ ...ctx, log: undefined }) }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d.toString(); });
  const sig = await new Promise((r) => child.on('close', (_c, s) => r(s)));
  assert.equal(sig, 'SIGKILL');
  const state = JSON.parse(out) as SandboxState;
  const driver = new SandboxDriver(); // a "restarted daemon": fresh driver, persisted state only
  assert.ok(await driver.alive(ctx, state));
  assert.match(await eventually(() => tcpRead(ctx.network.guestAddr, PORT), (s) => s.length > 0, 'guest server'), new RegExp(`^${ctx.spec.name} \\d+$`));
  // a reused pid with another start time is not the guest
  assert.equal(await driver.alive(ctx, { ...state, initStartTime: state.initStartTime + 1 }), false);
  await driver.stop(ctx, state, 5000);
  await driver.cleanup(ctx, state);
  await assertNothingLeft(ctx);
  assert.equal(await isProcessAlive(state.launcherPid, state.launcherStartTime), false);
});

test('a start that fails half-way removes what it created', { skip }, async (t) => {
  const f = await fixture(t);
  const stateDir = f.stateDir;
  const g = await newGuest(f);
  const driver = new SandboxDriver({ command: serverCommand });
  // fails after the cgroup and the netns exist: the address is invalid
  const bad = { ...g.ctx, network: { ...g.ctx.network, guestAddr: '10.300.0.1' } };
  await assert.rejects(driver.start(bad), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_SANDBOX_NETNS_FAILED');
  await assertNothingLeft(g.ctx);
  // fails in the init (the share is not a directory it can bind): the launcher's processes are gone too
  const notDir = join(stateDir, 'not-a-dir');
  await writeFile(notDir, '');
  const broken = { ...g.ctx, paths: { ...g.ctx.paths, share: notDir } };
  await assert.rejects(driver.start(broken), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_SANDBOX_START_FAILED' && /cannot bind the share/.test(e.message));
  await assertNothingLeft(g.ctx);
  // an existing interface of the same name: refused, and the foreign interface is left alone
  await run('ip', ['link', 'add', g.ctx.network.hostIf, 'type', 'veth', 'peer', 'name', g.ctx.network.guestIf]);
  t.after(() => runRaw('ip', ['link', 'del', g.ctx.network.hostIf]).then(() => undefined));
  await assert.rejects(driver.start(g.ctx), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_SANDBOX_EXISTS');
  assert.ok(await linkExists(g.ctx.network.hostIf));
  assert.equal(await netnsExists(g.ctx.network.netns), false);
});

test('unusable state dirs are refused', { skip }, async (t) => {
  const f = await fixture(t);
  const g = await newGuest(f);
  const driver = new SandboxDriver({ command: serverCommand });
  for (const d of ['/', '/mnt', '/run/hylics/x', 'relative/dir']) {
    await assert.rejects(driver.start({ ...g.ctx, stateDir: d }), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_SANDBOX_BAD_PATH', d);
  }
  await assertNothingLeft(g.ctx);
  await access(g.ctx.paths.share);
});

test('the memory limit holds (an over-limit program is OOM-killed and restarted) and a TERM-ignoring guest is killed by stop', { skip }, async (t) => {
  const f = await fixture(t);
  const g = await newGuest(f);
  const ctx = { ...g.ctx, spec: { ...g.ctx.spec, memoryBytes: 32 * MiB } };
  // tail has to hold 150 MiB of zeros before it can print them: far over the limit. TERM is ignored.
  const driver = new SandboxDriver({ command: () => ['sh', '-c', 'trap "" TERM; head -c 200m /dev/zero | tail -c 150m >/dev/null || exit 1; sleep 1000'] });
  const state = await driver.start(ctx);
  const cg = await Cgroup.open(sandboxCgroupName(ctx));
  assert.equal((await cg.limits()).memoryBytes, 32 * MiB);
  // the init keeps oom_score_adj 0, its program runs at 500: the OOM killer ends the program, never the guest's init
  const adj = await eventually(async () => Promise.all((await cg.pids()).map(async (p) =>
    Number((await readFile(`/proc/${p}/oom_score_adj`, 'utf8').catch(() => 'NaN')).trim()))),
  (a) => a.includes(0) && a.includes(500), 'oom_score_adj of the init and its program', 10000);
  // (NaN: a process of the pipeline that ended between the cgroup's listing and the read: the OOM killer's work)
  assert.ok(adj.every((a) => a === 0 || a === 500 || Number.isNaN(a)), `oom_score_adj ${adj.join(',')}`);
  // the kernel's OOM killer ends the pipeline inside the guest; the init notices its program end and restarts it
  await eventually(() => readFile(state.logFile, 'utf8'), (log) => /exited with status \d+; restarting/.test(log), 'program restarted after OOM', 30000);
  const peak = (await cg.stats()).memoryPeakBytes;
  assert.ok(peak === undefined || peak <= 32 * MiB, `peak ${peak}`);
  assert.ok(await driver.alive(ctx, state));
  await driver.stop(ctx, state, 300); // TERM is ignored by the program: SIGKILL after 300 ms
  assert.equal(await driver.alive(ctx, state), false);
  await driver.cleanup(ctx, state);
  await assertNothingLeft(ctx);
});
