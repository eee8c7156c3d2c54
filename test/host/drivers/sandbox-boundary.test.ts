// #12 item 8: is a sandbox guest a boundary against its own root? A probe runs as the guest program (guest root,
// with exactly the guest's privileges) in each isolation and tries, outside its share: to create a file in every
// top-level directory of the host, to append to a host file, to read secrets the host planted (0600 canaries in
// /root, /etc, /tmp and the state dir, another guest's share, /etc/shadow), and it lists its /dev. The host then
// checks what really happened on its side (a write counts only if the file is on the host, a read only if the
// guest got the host's bytes). `namespaces` (the earlier driver) reproduces the finding; `container` must allow
// none of it. The counts are the figure the issue asks for (t.diagnostic: "host files ... before and after").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SandboxDriver, sandboxExecArgv, type SandboxIsolation } from '../../../src/host/drivers/sandbox.js';
import { runRaw } from '../../../src/os/exec.js';
import { guestRootHostId } from '../../../src/os/oci-config.js';
import type { DriverContext } from '../../../src/host/drivers/types.js';
import { ShareManager } from '../../../src/host/share-manager.js';
import { readMounts } from '../../../src/os/mount.js';

const skip = process.getuid?.() !== 0 ? 'needs root (namespaces, cgroups, mounts, crun)' : false;
const MiB = 1024 * 1024;
const log = pino({ level: 'silent' });
/** What a container's /dev holds (crun's standard nodes and mounts). Anything else is a host device. */
const STANDARD_DEV = new Set(['null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx', 'pts', 'shm', 'mqueue', 'fd', 'stdin', 'stdout', 'stderr', 'core', 'console']);
/** Top-level host dirs not probed for writes: kernel file systems. */
const NOT_PROBED = new Set(['proc', 'sys']);

interface ProbeResult { read: Record<string, string | null>; wrote: string[]; appended: boolean; dev: string[] }

// the guest program: tries everything, reports in its share, then stays (the init would restart it)
const PROBE = `
const fs = require('fs');
const [tag, reads, dirs, appendTo] = JSON.parse(process.env.PROBE_ARGS);
const out = { read: {}, wrote: [], appended: false, dev: [] };
for (const f of reads) { try { out.read[f] = fs.readFileSync(f, 'utf8'); } catch { out.read[f] = null; } }
for (const d of dirs) { try { fs.writeFileSync(d + '/.hylics-probe-' + tag, 'x'); out.wrote.push(d); } catch {} }
try { fs.appendFileSync(appendTo, 'guest'); out.appended = true; } catch {}
try { out.dev = fs.readdirSync('/dev'); } catch {}
fs.writeFileSync('/mnt/hylics/probe.json', JSON.stringify(out));
setInterval(() => {}, 1e9);`;

async function probe(
  t: { after: (fn: () => Promise<void>) => void; diagnostic: (s: string) => void },
  isolation: SandboxIsolation,
  index: number,
) {
  const stateDir = await mkdtemp(join(tmpdir(), `hylics-bnd-${process.pid}-`));
  const tag = `${process.pid % 100000}${index}`;
  const name = `b${tag}`;
  const other = `o${tag}`;
  const sm = new ShareManager({ stateDir });
  await sm.create(name, 4 * MiB);
  await sm.create(other, 4 * MiB);
  const dir = join(stateDir, 'guests', name);
  const oct = (process.pid % 200) + 20;
  const ctx: DriverContext = {
    spec: { name, driver: 'sandbox', shareSizeBytes: 4 * MiB, cpus: 0.5, memoryBytes: 256 * MiB },
    paths: { dir, share: sm.path(name), run: join(dir, 'run'), logs: join(dir, 'logs') },
    network: {
      index: 200 + index,
      hostIf: `hybh${tag}`,
      guestIf: `hybg${tag}`,
      hostAddr: `10.250.${oct}.${4 * index + 1}`,
      guestAddr: `10.250.${oct}.${4 * index + 2}`,
      prefixLen: 30,
      netns: `hylics-bnd-${tag}`,
    },
    stateDir,
    log,
  };
  // secrets the host keeps (0600), which a guest must not read
  const secret = `host secret ${tag}`;
  const canaries = [
    `/root/.hylics-canary-${tag}`,
    `/etc/.hylics-canary-${tag}`,
    `/tmp/.hylics-canary-${tag}`,
    join(stateDir, 'canary'),
    join(sm.path(other), 'secret'),
  ];
  for (const c of canaries) await writeFile(c, secret, { mode: 0o600 });
  const reads = [...canaries, '/etc/shadow'];
  const dirs = (await readdir('/', { withFileTypes: true }))
    .filter((d) => d.isDirectory() && !NOT_PROBED.has(d.name))
    .map((d) => `/${d.name}`);
  dirs.push(stateDir, '/dev/shm', '/var/tmp');
  const appendTo = `/tmp/.hylics-canary-${tag}`;
  const cleanupHost = async (): Promise<void> => {
    for (const d of dirs) await rm(`${d}/.hylics-probe-${tag}`, { force: true });
    for (const c of canaries) await rm(c, { force: true });
  };
  const driver = new SandboxDriver({
    isolation,
    command: () => [
      '/usr/bin/env',
      `PROBE_ARGS=${JSON.stringify([tag, reads, dirs, appendTo])}`,
      process.execPath,
      '-e',
      PROBE,
    ],
  });
  t.after(async () => {
    await driver.cleanup(ctx, undefined).catch(() => undefined);
    for (const n of [name, other]) await sm.destroy(n).catch(() => undefined);
    await cleanupHost();
    if (!(await readMounts()).some((m) => m.mountPoint.startsWith(stateDir)))
      await rm(stateDir, { recursive: true, force: true });
  });
  const state = await driver.start(ctx);
  if (isolation === 'container') {
    // the guest program's view of its own confinement: seccomp filter on, guest root = the unprivileged host uid,
    // namespace and mount syscalls refused (the probe's exec goes through crun: the guest's caps and filter)
    const argv = sandboxExecArgv(state, [
      'sh',
      '-c',
      'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status; cat /proc/self/uid_map; unshare -U true && echo UNSHARED; mount -t tmpfs x /mnt && echo MOUNTED; true',
    ]);
    const r = await runRaw(argv[0]!, argv.slice(1));
    assert.match(r.stdout, /Seccomp:\s+2/);
    assert.match(r.stdout, /NoNewPrivs:\s+1/);
    assert.match(r.stdout, new RegExp(`^\\s*0\\s+${guestRootHostId(ctx.network.index)}\\s+65536$`, 'm'));
    assert.doesNotMatch(r.stdout, /UNSHARED|MOUNTED/);
  }
  const resultFile = join(sm.path(name), 'probe.json');
  const until = Date.now() + 60_000;
  while (!(await stat(resultFile).catch(() => undefined)) && Date.now() < until)
    await new Promise((r) => setTimeout(r, 100));
  const r = JSON.parse(await readFile(resultFile, 'utf8')) as ProbeResult;
  await driver.stop(ctx, state, 5000);
  await driver.cleanup(ctx, state);

  // what happened on the host's side
  const shadow = await readFile('/etc/shadow', 'utf8').catch(() => undefined);
  const readHost = Object.entries(r.read)
    .filter(([f, got]) => got !== null && got === (f === '/etc/shadow' ? shadow : secret))
    .map(([f]) => f);
  const wroteHost: string[] = [];
  for (const d of dirs) if (await stat(`${d}/.hylics-probe-${tag}`).catch(() => undefined)) wroteHost.push(d);
  const appendedHost = (await readFile(appendTo, 'utf8')) !== secret;
  const hostDevices = r.dev.filter((d) => !STANDARD_DEV.has(d) && !d.startsWith('.hylics-probe-'));
  await cleanupHost();
  const figure = {
    isolation,
    readable: readHost.length,
    readTargets: reads.length,
    writable: wroteHost.length + (appendedHost ? 1 : 0),
    writeTargets: dirs.length + 1,
    hostDevices: hostDevices.length,
  };
  t.diagnostic(
    `${isolation}: host files a root guest read ${figure.readable}/${figure.readTargets} [${readHost.join(' ')}], ` +
      `wrote ${figure.writable}/${figure.writeTargets} [${wroteHost.join(' ')}${appendedHost ? ` ${appendTo}(append)` : ''}], host devices in /dev ${figure.hostDevices}`,
  );
  return { figure, readHost, wroteHost, appendedHost, hostDevices };
}

test('sandbox boundary: the namespaces isolation lets guest root read and write the host (the finding)', { skip, timeout: 120_000 }, async (t) => {
  const p = await probe(t, 'namespaces', 0);
  assert.ok(p.readHost.includes('/etc/shadow'), 'guest root read the host /etc/shadow');
  assert.ok(p.wroteHost.includes('/etc') || p.wroteHost.includes('/usr'), 'guest root wrote into the host root file system');
  assert.ok(p.hostDevices.length > 0, 'guest sees host devices');
});

test('sandbox boundary: a container guest\'s root reads and writes no host file outside its share, sees no host device', { skip, timeout: 120_000 }, async (t) => {
  const p = await probe(t, 'container', 1);
  assert.deepEqual(p.readHost, [], 'host files read by guest root');
  assert.deepEqual(p.wroteHost, [], 'host dirs written by guest root');
  assert.equal(p.appendedHost, false, 'host file appended by guest root');
  assert.deepEqual(p.hostDevices, [], 'host devices in the guest\'s /dev');
});
