// The lighttpd engine runs one lighttpd process per module (lighttpd-engine.ts): a module added or removed does not
// touch another module's process, its clients' connections or its config files, each module has its own connection
// cap, and a crash of one module's process restarts that process alone. And `module-engine: auto` (the default):
// lighttpd for a guest with http modules only, nginx once it has a stream module, lighttpd again when the last one
// goes. Real servers, root.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { ModuleManager, type ModuleInfo } from '../../../src/host/modules/index.js';
import { findNginx } from '../../../src/host/modules/engine.js';
import { findLighttpd } from '../../../src/host/modules/lighttpd-engine.js';
import { canRun, curl, makeFixture, waitFor, type Fixture } from './fixture.js';

const skip = canRun() || (!findLighttpd() && 'needs lighttpd (Debian package lighttpd)');
/** Module A's cap, and more connections than the guest-wide cap of one process for two modules (2 * CAP + 1). */
const CAP = 3;
/** What the engine writes to each module's conf/<id>/ (lighttpd-engine.ts configure). */
const CONF_FILES = ['lighttpd.conf', 'passwd', 'group', 'nsswitch.conf'];

/** A connection to a module's listen address; `ask` sends one keep-alive request and resolves with the response. */
function open(mod: ModuleInfo): Promise<{ s: Socket; ask: (path: string) => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const s = connect(mod.listen.port, mod.listen.addr, () => {
      resolve({
        s,
        ask: (path) => new Promise((res, rej) => {
          let got = '';
          const onData = (d: Buffer): void => {
            got += d.toString();
            const m = /\r\nContent-Length: (\d+)\r\n[\s\S]*?\r\n\r\n/i.exec(got);
            const head = got.indexOf('\r\n\r\n');
            if (m && head >= 0 && got.length - head - 4 >= Number(m[1])) { s.off('data', onData); res(got); }
          };
          s.on('data', onData);
          s.once('close', () => rej(new Error(`closed; got ${JSON.stringify(got)}`)));
          s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
        }),
      });
    });
    s.on('error', () => {});
    s.once('error', reject);
  });
}

describe('lighttpd engine: one process per module', () => {
  let fx: Fixture;
  let m: ModuleManager;
  let a: ModuleInfo;
  const held: Socket[] = [];

  before(async () => {
    if (skip) return;
    fx = await makeFixture('ltpm', 'lighttpd');
    writeFileSync(join(fx.share, 'a.txt'), 'per-module\n');
    // a long header timeout: connections held open without a request stay for the whole test
    m = new ModuleManager({ engine: 'lighttpd', runDir: join(fx.base, 'run'), limits: { maxConnections: CAP, headersTimeoutMs: 120_000, keepAliveTimeoutMs: 120_000 }, log: () => {} });
    a = await m.start(fx.guest, { kind: 'http', root: '/', port: 80 });
  });
  /** Inode and mtime of each file of module `id`'s config directory (conf/<id>/ in the guest's run directory). */
  const confFiles = (id: string): Record<string, string> => {
    const runs = readdirSync(join(fx.base, 'run')).filter((d) => d.startsWith(`${fx.guest.name}.`));
    assert.equal(runs.length, 1, `one run directory for the guest: ${runs.join(' ')}`);
    return Object.fromEntries(CONF_FILES.map((f) => {
      const st = statSync(join(fx.base, 'run', runs[0]!, 'conf', id, f), { bigint: true });
      return [f, `${st.ino}:${st.mtimeNs}`];
    }));
  };
  after(async () => {
    for (const s of held) s.destroy();
    await m?.close();
    if (fx) await fx.cleanup();
  });

  test('a module added while a client holds a keep-alive connection to another: that connection still works', { skip }, async () => {
    const c = await open(a);
    held.push(c.s);
    assert.match(await c.ask('/a.txt'), /^HTTP\/1\.1 200[\s\S]*per-module\n$/);
    const pidA = m.workerPid(fx.guest.name, a.id);
    const filesA = confFiles(a.id);
    const b = await m.start(fx.guest, { kind: 'http', root: '/', port: 81 });
    assert.notEqual(m.workerPid(fx.guest.name, b.id), pidA, 'module B has its own process');
    assert.equal(m.workerPid(fx.guest.name, a.id), pidA, 'module A\'s process kept running');
    assert.match(await c.ask('/a.txt'), /^HTTP\/1\.1 200[\s\S]*per-module\n$/, 'the same connection, after B was added');
    assert.deepEqual(confFiles(a.id), filesA, 'A\'s config files were not rewritten when B was added');
    assert.equal(Object.keys(confFiles(b.id)).length, CONF_FILES.length, 'B has its own');
    await m.stop(fx.guest.name, b.id);
    assert.match(await c.ask('/a.txt'), /^HTTP\/1\.1 200[\s\S]*per-module\n$/, 'the same connection, after B was removed');
    assert.equal(m.workerPid(fx.guest.name, a.id), pidA);
    assert.deepEqual(confFiles(a.id), filesA, 'nor when B was removed');
    c.s.destroy();
  });

  test('each module has its own connection cap: module A at its cap does not stop module B\'s clients', { skip }, async () => {
    const b = await m.start(fx.guest, { kind: 'http', root: '/', port: 82 });
    // more than A's cap, and more than one process's cap for both modules would be (2 * CAP + 1)
    for (let i = 0; i < 2 * CAP + 2; i++) {
      const s = connect(a.listen.port, a.listen.addr);
      s.on('error', () => {});
      held.push(s);
    }
    await waitFor('A at its cap', async () => {
      const r = await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', `http://${fx.guest.guestAddr}:80/a.txt`], 2000);
      return r.stdout !== '200';
    }, 30_000);
    const r = await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:82/a.txt`]);
    assert.equal(r.stdout, 'per-module\n', 'B serves while A is at its cap');
    for (const s of held.splice(0)) s.destroy();
    await waitFor('A serves again once its clients left', async () =>
      (await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:80/a.txt`], 5000)).stdout === 'per-module\n', 30_000);
    await m.stop(fx.guest.name, b.id);
  });

  test('a crash of one module\'s process restarts that process only', { skip }, async () => {
    const b = await m.start(fx.guest, { kind: 'http', root: '/', port: 83 });
    const cb = await open(b);
    held.push(cb.s);
    assert.match(await cb.ask('/a.txt'), /^HTTP\/1\.1 200/);
    const pidA = m.workerPid(fx.guest.name, a.id)!;
    const pidB = m.workerPid(fx.guest.name, b.id)!;
    // each module's process in the report: its pid, memory, connections (B's client holds one)
    const rep = (await m.engineReport(fx.guest.name)).modules!;
    assert.equal(rep[a.id]!.pid, pidA);
    assert.equal(rep[b.id]!.pid, pidB);
    assert.ok(rep[a.id]!.rssBytes! > 0 && rep[b.id]!.rssBytes! > 0, JSON.stringify(rep));
    assert.ok(rep[b.id]!.active! >= 1, JSON.stringify(rep));
    process.kill(pidA, 'SIGKILL');
    await waitFor('A restarted', () => { const p = m.workerPid(fx.guest.name, a.id); return p !== undefined && p !== pidA; });
    assert.equal(m.workerPid(fx.guest.name, b.id), pidB, 'B\'s process was not restarted');
    assert.match(await cb.ask('/a.txt'), /^HTTP\/1\.1 200/, 'B\'s client kept its connection');
    await waitFor('A serves again', async () =>
      (await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:80/a.txt`], 5000)).stdout === 'per-module\n', 30_000);
    cb.s.destroy();
    await m.stop(fx.guest.name, b.id);
  });
});

describe('module-engine auto (the default): lighttpd unless the guest has a stream module', () => {
  const skipAuto = skip || (!findNginx() && 'needs nginx');
  let fx: Fixture;
  before(async () => {
    if (skipAuto) return;
    fx = await makeFixture('ltau'); // the fixture's manager: no engine option, so the default
  });
  after(async () => { if (fx) await fx.cleanup(); });
  const comm = (pid: number | undefined): string => (pid ? readFileSync(`/proc/${pid}/comm`, 'utf8').trim() : '');

  test('an http-only guest runs lighttpd; a stream module switches it to nginx; its removal back to lighttpd', { skip: skipAuto, timeout: 120_000 }, async () => {
    const m = fx.manager;
    assert.equal(m.engineSetting, 'auto');
    mkdirSync(join(fx.share, 'www'), { recursive: true });
    writeFileSync(join(fx.share, 'www', 'a.txt'), 'auto\n');
    const get = async (port: number): Promise<string> =>
      (await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:${port}/a.txt`])).stdout;
    const http = await m.start(fx.guest, { kind: 'http', root: 'www', port: 80 });
    assert.equal(m.engineOf(fx.guest.name), 'lighttpd');
    assert.equal(comm(m.workerPid(fx.guest.name, http.id)), 'lighttpd');
    assert.equal(await get(80), 'auto\n');
    const stream = await m.start(fx.guest, { kind: 'stream', root: 'www', port: 81 });
    assert.equal(m.engineOf(fx.guest.name), 'nginx');
    assert.equal(comm(m.workerPid(fx.guest.name)), 'nginx');
    assert.ok(m.gatePid(fx.guest.name), 'the stream gate runs');
    assert.equal(await get(80), 'auto\n', 'the http module serves on nginx, same address');
    assert.equal(http.listen.port, m.list(fx.guest.name).find((x) => x.id === http.id)!.listen.port);
    await m.stop(fx.guest.name, stream.id);
    assert.equal(m.engineOf(fx.guest.name), 'lighttpd');
    assert.equal(comm(m.workerPid(fx.guest.name, http.id)), 'lighttpd');
    assert.equal(m.gatePid(fx.guest.name), undefined, 'the gate went with the last stream module');
    assert.equal(await get(80), 'auto\n');
    // requests on both engines were counted (the access log was followed across the switches)
    // (the last one only once lighttpd writes its log: every 4 s, 8 s when a loaded one misses a write; a cap)
    await waitFor('counters', () => m.list(fx.guest.name)[0]!.totals.requests >= 3, 30_000);
    await m.stop(fx.guest.name, http.id);
    assert.equal(m.engineOf(fx.guest.name), undefined);
  });
});
