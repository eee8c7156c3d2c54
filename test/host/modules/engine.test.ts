// The module engine itself, once per engine (nginx, lighttpd): what its mount namespace (and lighttpd's chroot)
// holds, who it runs as, its cgroup, the limits a hostile client meets (header timeout, idle keep-alive timeout, a
// client that never reads), reload (nginx) or the other module's own process (lighttpd) on module changes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { ModuleManager, type ModuleInfo } from '../../../src/host/modules/index.js';
import type { EngineKind } from '../../../src/host/modules/engine-api.js';
import { canRun, curl, makeFixture, TEST_ENGINES, waitFor, type Fixture } from './fixture.js';

const skip = canRun();
function suite(engine: EngineKind): void {
  let fx: Fixture;
  let m2: ModuleManager;
  let mod: ModuleInfo;
  let base: string;
  const LIMIT_MS = 1000;

  before(async () => {
    if (skip) return;
    fx = await makeFixture('eng', engine);
    writeFileSync(join(fx.share, 'a.txt'), 'engine\n');
    writeFileSync(join(fx.share, 'big.bin'), randomBytes(32 * 1024 * 1024));
    m2 = new ModuleManager({
      engine,
      limits: { headersTimeoutMs: LIMIT_MS, keepAliveTimeoutMs: LIMIT_MS, stallMs: LIMIT_MS },
      resources: { memoryBytes: 64 * 1024 * 1024 },
    });
    mod = await m2.start(fx.guest, { kind: 'http', root: '/', port: 80 });
    base = `http://${fx.guest.guestAddr}:80`;
  });
  after(async () => { await m2?.close(); if (fx) await fx.cleanup(); });

  function rawConnect(): Promise<{ s: Socket; closed: Promise<number> }> {
    return new Promise((resolve, reject) => {
      const s = connect(mod.listen.port, mod.listen.addr, () => {
        const t0 = Date.now();
        resolve({ s, closed: new Promise((r) => s.once('close', () => r(Date.now() - t0))) });
      });
      s.on('error', () => {});
      s.once('error', reject);
    });
  }

  test('the engine runs as nobody with no capabilities, in the guest\'s module cgroup', { skip }, async () => {
    const pid = m2.workerPid(fx.guest.name)!;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    // lighttpd's bounding set keeps what it needed to chroot and drop to nobody (setgid, setuid, sys_chroot: 0x400c0);
    // with no permitted capability and no_new_privs it cannot have any of them back
    assert.match(status, engine === 'nginx' ? /^CapBnd:\s+0+$/m : /^CapBnd:\s+0+400c0$/m);
    assert.match(status, /^CapPrm:\s+0+$/m);
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), new RegExp(engine));
    const report = await m2.engineReport(fx.guest.name);
    assert.ok(report.cgroup, report.cgroupError);
    assert.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(report.cgroup.name.replace(/\./g, '\\.')));
    assert.equal(report.cgroup.limits.memoryBytes, 64 * 1024 * 1024);
    assert.ok(report.cgroup.memoryBytes > 0 && report.cgroup.pids >= 2, JSON.stringify(report));
    assert.equal(report.connections?.active !== undefined, true);
  });

  test('the engine\'s mount namespace holds only the share (read-only, nodev), /usr and its own files', { skip: skip || (engine !== 'nginx' && 'checks the nginx engine\'s namespace; lighttpd\'s chroot has its own test') }, async () => {
    const pid = m2.workerPid(fx.guest.name)!;
    const root = `/proc/${pid}/root`;
    const top = readdirSync(root).sort();
    for (const name of top) assert.ok(['bin', 'etc', 'gate', 'lib', 'lib32', 'lib64', 'libx32', 'log', 'sbin', 'share', 'tmp', 'usr'].includes(name), `unexpected /${name} in the engine's root`);
    assert.deepEqual(readdirSync(join(root, 'etc')), ['nginx.conf']);
    assert.equal(readFileSync(join(root, 'share', 'a.txt'), 'utf8'), 'engine\n');
    assert.ok(!top.includes('proc') && !top.includes('home') && !top.includes('run') && !top.includes('root'));
    // what a symlink in the share to /etc/passwd would reach there: nothing
    assert.throws(() => readFileSync(join(root, 'etc', 'passwd')), /ENOENT/);
    const mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trim().split('\n').map((l) => l.split(' '));
    const points = mounts.map((f) => f[4]!).sort();
    assert.deepEqual(points.filter((p) => !['/', '/usr', '/share', '/etc', '/log', '/gate'].includes(p) && !p.startsWith('/usr/')), [], points.join(' '));
    const share = mounts.find((f) => f[4] === '/share')!;
    assert.match(share[5]!, /\bro\b/);
    assert.match(share[5]!, /\bnodev\b/);
    assert.ok(!readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(fx.otherShare), 'another guest\'s share is not mounted');
  });

  test('lighttpd is chrooted into a root that holds only the module roots and its write-only logs', { skip: skip || (engine !== 'lighttpd' && 'checks the lighttpd engine\'s chroot; nginx has no chroot (its namespace has its own test)') }, async () => {
    const pid = m2.workerPid(fx.guest.name)!;
    const root = `/proc/${pid}/root`; // lighttpd's root after its chroot
    assert.deepEqual(readdirSync(root).sort(), ['log', 'm', 'tmp']);
    assert.deepEqual(readdirSync(join(root, 'm')), [mod.id]);
    assert.equal(readFileSync(join(root, 'm', mod.id, 'a.txt'), 'utf8'), 'engine\n');
    // nothing a symlink could name outside the share: no /usr, /etc (config, passwd), /proc there
    for (const p of ['usr', 'etc', 'proc', 'dev', 'bin', 'lib']) assert.throws(() => readdirSync(join(root, p)), /ENOENT/, p);
    // the log directory: root's, passable but not listable or writable by lighttpd's user; each log write-only for it
    const log = statSync(join(root, 'log'));
    assert.equal(log.uid, 0);
    assert.equal(log.mode & 0o777, 0o711);
    const acc = statSync(join(root, 'log', `${mod.id}.access`));
    assert.equal(acc.uid, 65534);
    assert.equal(acc.mode & 0o777, 0o200);
    const mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trim().split('\n').map((l) => l.split(' '));
    const share = mounts.find((f) => f[4] === `/m/${mod.id}`)!; // (mount points as seen from its root)
    assert.match(share[5]!, /\bro\b/);
    assert.match(share[5]!, /\bnodev\b/);
    assert.ok(!readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(fx.otherShare), 'another guest\'s share is not mounted');
  });

  test('a client that sends no complete request header is dropped after the header timeout', { skip }, async () => {
    const c = await rawConnect();
    c.s.write('GET /a.txt HTTP/1.1\r\nHost: x\r\n'); // and never the blank line
    const ms = await c.closed;
    assert.ok(ms >= LIMIT_MS * 0.8, `closed after ${ms} ms`);
  });

  test('an idle keep-alive connection is closed after the keep-alive timeout', { skip }, async () => {
    const c = await rawConnect();
    let got = '';
    c.s.on('data', (d: Buffer) => { got += d.toString(); });
    c.s.write('GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n');
    const ms = await c.closed;
    assert.match(got, /^HTTP\/1\.1 200/);
    assert.ok(got.endsWith('engine\n'));
    assert.ok(ms >= LIMIT_MS * 0.8, `closed after ${ms} ms`);
  });

  test('a client that stops reading a body is dropped (send_timeout), counted as an error', { skip, timeout: 60_000 }, async () => {
    await new Promise((r) => setTimeout(r, 2500)); // earlier tests' log lines are flushed (flush=1s) and counted
    const before = m2.list(fx.guest.name)[0]!.totals.errors;
    const c = await rawConnect();
    c.s.pause(); // reads nothing: the socket buffers fill, nginx waits send_timeout, then closes
    c.s.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
    // the engine lets go of the transfer (a paused socket does not see the RST, so ask nginx): only the status request
    // writes
    // (lighttpd reports open connections only: the status request's own)
    const busy = async (): Promise<number> => {
      const c = (await m2.engineReport(fx.guest.name)).connections;
      return (engine === 'nginx' ? c?.writing : c?.active) ?? 9;
    };
    await waitFor('the stalled transfer dropped', async () => (await busy()) <= 1, 15_000);
    // (a cap, not a bound: lighttpd writes its log every 4 s, 8 s when it misses one under load, read every second)
    await waitFor('the broken transfer in the counters', () => m2.list(fx.guest.name)[0]!.totals.errors > before, 30_000);
    c.s.destroy();
  });

  test('adding and removing modules leaves the running module\'s server alone (nginx: reload, same master; lighttpd: its own process)', { skip }, async () => {
    const master = m2.workerPid(fx.guest.name);
    const extra = await m2.start(fx.guest, { kind: 'http', root: '/', port: 81 });
    assert.equal((await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:81/a.txt`])).stdout, 'engine\n');
    assert.equal((await curl(fx.clientNs, [`${base}/a.txt`])).stdout, 'engine\n');
    await m2.stop(fx.guest.name, extra.id);
    assert.notEqual((await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', `http://${fx.guest.guestAddr}:81/a.txt`], 3000)).stdout, '200');
    assert.equal((await curl(fx.clientNs, [`${base}/a.txt`])).stdout, 'engine\n');
    assert.equal(m2.workerPid(fx.guest.name), master, engine === 'nginx' ? 'a reload, not a restart' : 'only the added module\'s process started');
  });

  test('memory of the engine is reported (hylics_module_engine_memory_bytes)', { skip }, async () => {
    await waitFor('memory gauge', async () => new RegExp(`hylics_module_engine_memory_bytes\\{guest="${fx.guest.name}"\\} [1-9]`).test(await m2.registry.metrics()), 5000);
  });
}

for (const engine of TEST_ENGINES) describe(`module engine (${engine})`, () => suite(engine));
