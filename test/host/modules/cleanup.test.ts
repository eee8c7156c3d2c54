// What a module leaves behind when it, or the daemon, stops (issue #11 cleanup, #12 item 7): the stream gate goes
// with the guest's last stream module; a daemon killed with SIGKILL takes its engines and gates with it, and the
// next daemon with the same run directory removes the nft tables, cgroups and engine directories it left, and
// nothing of another daemon that has a guest of the same name. Real nginx, nft, cgroups, a child process as daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { ModuleManager } from '../../../src/host/modules/index.js';
import { findNginx } from '../../../src/host/modules/engine.js';
import { listModuleRules } from '../../../src/os/nft.js';
import { canRun, curl, makeFixture, waitFor } from './fixture.js';

const skip = canRun() || (findNginx() ? false : 'needs nginx');
const alive = (pid: number | undefined): boolean => pid !== undefined && existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(safeStatus(pid));
function safeStatus(pid: number): string {
  try { return readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { return ''; }
}

test('the stream gate stops with the guest\'s last stream module; its http module keeps serving', { skip, timeout: 120_000 }, async () => {
  const fx = await makeFixture('cg');
  try {
    mkdirSync(`${fx.share}/www`, { recursive: true });
    writeFileSync(`${fx.share}/www/a.txt`, 'hello\n', { mode: 0o644 });
    const http = await fx.manager.start(fx.guest, { kind: 'http', root: 'www', port: 80 });
    const stream = await fx.manager.start(fx.guest, { kind: 'stream', root: 'www', port: 81 });
    const gate = fx.manager.gatePid(fx.guest.name);
    assert.ok(alive(gate), 'the gate runs while a stream module does');
    await fx.manager.stop(fx.guest.name, stream.id);
    await waitFor('the gate to exit', () => !alive(gate), 10_000);
    assert.equal(fx.manager.gatePid(fx.guest.name), undefined);
    const r = await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:${http.port}/a.txt`]);
    assert.equal(r.stdout, 'hello\n');
    // a new stream module gets a new gate
    await fx.manager.start(fx.guest, { kind: 'stream', root: 'www', port: 82 });
    assert.ok(alive(fx.manager.gatePid(fx.guest.name)));
  } finally {
    await fx.cleanup();
  }
});

test('a stream gate that dies is restarted with back-off, the guest told; listed segments are served again', { skip, timeout: 120_000 }, async () => {
  const fx = await makeFixture('gr');
  try {
    mkdirSync(`${fx.share}/tv`, { recursive: true });
    writeFileSync(`${fx.share}/tv/live.m3u8`, '#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nseg0.ts\n', { mode: 0o644 });
    writeFileSync(`${fx.share}/tv/seg0.ts`, 'segment\n', { mode: 0o644 });
    const stream = await fx.manager.start(fx.guest, { kind: 'stream', root: 'tv', port: 81 });
    const url = `http://${fx.guest.guestAddr}:${stream.port}`;
    const status = async (path: string): Promise<string> =>
      (await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', `${url}${path}`], 3000)).stdout;
    assert.equal(await status('/live.m3u8'), '200');
    assert.equal(await status('/seg0.ts'), '200');
    const gate = fx.manager.gatePid(fx.guest.name)!;
    process.kill(gate, 'SIGKILL');
    await waitFor('worker-restarted event for the gate', () =>
      fx.events.some((e) => e.type === 'worker-restarted' && e.guest === fx.guest.name && e.reason === 'gate killed by SIGKILL'));
    await waitFor('a new gate', () => alive(fx.manager.gatePid(fx.guest.name)) && fx.manager.gatePid(fx.guest.name) !== gate);
    // the new gate serves the module again: a playlist read through it lists the segment, which is then served
    await waitFor('the segment served again', async () => (await status('/live.m3u8')) === '200' && (await status('/seg0.ts')) === '200');
    assert.equal((await fx.manager.gateProbe(fx.guest.name, stream.id)).gate.playlists, 1);
  } finally {
    await fx.cleanup();
  }
});

test('a daemon killed with SIGKILL takes its engine and gate with it; the next one with its run dir removes the rest, '
  + 'and never another daemon\'s (same guest name)', { skip, timeout: 180_000 }, async () => {
  const fx = await makeFixture('ck');
  const runDir = `${fx.base}/state/run/modules`;
  const otherRunDir = `${fx.base}/state2/run/modules`;
  const other = new ModuleManager({ runDir: otherRunDir, log: () => {} });
  try {
    mkdirSync(`${fx.share}/www`, { recursive: true });
    writeFileSync(`${fx.share}/www/a.txt`, 'hello\n', { mode: 0o644 });
    // the "daemon": a child process running a ModuleManager with an http and a stream module
    const index = new URL('../../../src/host/modules/index.js', import.meta.url).href;
    const script = `const { ModuleManager } = await import(${JSON.stringify(index)});
      const g = JSON.parse(process.env.G);
      const m = new ModuleManager({ runDir: ${JSON.stringify(runDir)}, log: () => {} });
      const h = await m.start(g, { kind: 'http', root: 'www', port: 80 });
      await m.start(g, { kind: 'stream', root: 'www', port: 81 });
      const r = await m.engineReport(g.name);
      console.log(JSON.stringify({ master: r.masterPid, gate: r.gatePid, cgroup: r.cgroup?.name ?? null, listen: h.listen }));
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, G: JSON.stringify(fx.guest) }, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (c) => reject(new Error(`the daemon child exited (${c})`)));
    });
    const info = JSON.parse(line) as {
      master: number;
      gate: number;
      cgroup: string | null;
      listen: { addr: string; port: number };
    };
    assert.ok(alive(info.master) && alive(info.gate));
    const worker = Number(readFileSync(`/proc/${info.master}/task/${info.master}/children`, 'utf8').trim().split(/\s+/)[0]);
    assert.equal((await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:80/a.txt`])).stdout, 'hello\n');
    // the engine's directories: under the daemon's run dir, root's alone
    for (const d of [runDir, `${runDir}/${readdirSync(runDir)[0]}`]) assert.equal(statSync(d).mode & 0o777, 0o700, `${d} is 0700`);

    // another daemon with a guest of the same name
    const o = await other.start(fx.guest, { kind: 'http', root: 'www', port: 8080 });

    child.kill('SIGKILL');
    await waitFor('the engine and the gate to die with the daemon', () => !alive(info.master) && !alive(worker) && !alive(info.gate), 15_000);
    const listening = await curl(undefined, ['-o', '/dev/null', '-w', '%{http_code}', `http://${info.listen.addr}:${info.listen.port}/a.txt`], 5000);
    assert.notEqual(listening.stdout, '200', 'nothing serves on the dead daemon\'s listen port');

    const next = new ModuleManager({ runDir, log: () => {} });
    const table = await listModuleRules(fx.guest.name, next.owner);
    assert.match(table, /dport 80 dnat/, 'the dead daemon\'s table is still there before cleanup');
    const removed = await next.cleanupStale();
    await next.close();
    assert.deepEqual(removed.tables, [fx.guest.name]);
    assert.equal(await listModuleRules(fx.guest.name, next.owner), '');
    assert.deepEqual(readdirSync(runDir), [], 'engine directories removed');
    if (info.cgroup) {
      assert.equal(removed.cgroups.length, 1);
      for (const h of ['cpu', 'memory', 'pids']) {
        if (existsSync(`/sys/fs/cgroup/${h}`)) assert.ok(!existsSync(`/sys/fs/cgroup/${h}/${info.cgroup}`), `cgroup ${h}/${info.cgroup} removed`);
      }
      if (existsSync('/sys/fs/cgroup/cgroup.controllers')) assert.ok(!existsSync(`/sys/fs/cgroup/${info.cgroup}`));
    }
    // the other daemon's same-named guest: rules and module untouched
    assert.match(await listModuleRules(fx.guest.name, other.owner), /dport 8080 dnat/);
    assert.equal((await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:${o.port}/a.txt`])).stdout, 'hello\n');
  } finally {
    await other.close().catch(() => {});
    await fx.cleanup();
  }
});
