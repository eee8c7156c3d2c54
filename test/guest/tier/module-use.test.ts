// Reads by the host's offload modules count as uses for the guest's tiered store (docs/tier.md, "Policy"): a
// share mounted as hylicsd mounts it (strictatime), the module engine hylicsd picks by default (auto: lighttpd for
// an http-only guest) serving it over real HTTP, and the real agent with a short idle time. A file the module keeps
// serving stays in the memory tier past the idle time (so the module keeps answering 200); a file nobody reads moves
// to the disk tier, and comes back after the module answered 404 for it once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChannelServer } from '../../../src/host/channel/index.js';
import { mountTmpfs } from '../../../src/os/tmpfs.js';
import { entryArgv, NODE_BIN } from '../../../src/os/self.js';
import { canRun, curl, makeFixture, sh, waitFor } from '../../host/modules/fixture.js';

const skip = canRun();
const MiB = 1024 * 1024;
/**
 * The agent's idle time in this test, and how long the test watches the served file (well past it) once its first
 * use reached the guest. A use reaches the guest up to ~5 s after the request (lighttpd writes its access log every
 * 4 s, the manager drains it every second), 9 s or more on a loaded host; the store keeps a file with a reported use
 * for DEFAULT_HOST_USE_GRACE_MS (30 s) after each report, so the reports coming further apart than the idle time do
 * not evict it (store.test.ts shows that rule with a clock).
 */
const IDLE_MS = 8000;
const WATCH_MS = 2.5 * IDLE_MS;
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

test('a file served only by a host module stays in the memory tier past the idle time; an unserved one moves', { skip, timeout: 300_000 }, async (t) => {
  const fx = await makeFixture('tieruse');
  t.after(() => fx.cleanup());
  // the fixture's plain tmpfs replaced by one mounted the way the share manager mounts a share
  await sh('umount', [fx.share]);
  await mountTmpfs(fx.share, { sizeBytes: 64 * MiB, mode: 0o755 });
  const disk = join(fx.base, 'disk');
  const bin = join(fx.base, 'bin');
  await mkdir(disk);

  const server = new ChannelServer();
  server.handle('task.report', () => ({ accepted: 0 }));
  t.after(() => server.close());
  const name = fx.guest.name;
  await server.addGuest(name, { mode: 'listen', path: join(fx.base, 'channel.sock') });
  const logs: string[] = [];
  const agent: ChildProcess = spawn(NODE_BIN, [...entryArgv('guest/agent-main'), '--name', name, '--channel-unix', join(fx.base, 'channel.sock'),
    '--app-socket', join(fx.base, 'agent.sock'), '--share', fx.share, '--disk-tier', disk, '--bin-dir', bin,
    '--tier-idle', `${IDLE_MS}ms`, '--tier-sweep', '200ms', '--log-level', 'debug'], { stdio: ['ignore', 'ignore', 'pipe'] });
  agent.stderr!.on('data', (b: Buffer) => logs.push(b.toString()));
  t.after(() => { if (agent.exitCode === null) agent.kill('SIGKILL'); });
  await server.waitConnected(name, 30_000);
  const hylics = join(bin, 'hylics');
  await waitFor('the launcher', () => existsSync(hylics));

  await mkdir(join(fx.share, 'v'));
  // what the daemon's wiring does: module events go to the guest that owns the module
  const trace: string[] = [];
  fx.manager.on('event', (ev) => {
    if (ev.guest !== name) return;
    trace.push(`${new Date().toISOString()} module.event ${ev.type} ${JSON.stringify((ev as { files?: unknown }).files ?? [])}`);
    server.emitEvent(name, 'module.event', ev as never);
  });
  const why = (): string => `\n${trace.join('\n')}\n${logs.join('')}`;
  const mod = await fx.manager.start(fx.guest, { kind: 'http', root: 'v', port: 80 });
  t.after(() => fx.manager.stop(fx.guest.name, mod.id).catch(() => {}));
  const url = `http://${fx.guest.guestAddr}:80`;

  // then both files, put through the store (atime set explicitly, as every put and lookup does); the module is
  // started first and the served file put last, so that its first GET follows its put at once on a loaded machine
  const served = randomBytes(256 * 1024);
  const idle = randomBytes(256 * 1024);
  await writeFile(join(fx.base, 'served.src'), served);
  await writeFile(join(fx.base, 'idle.src'), idle);
  const env = { ...process.env, HYLICS_AGENT_SOCKET: join(fx.base, 'agent.sock'), HYLICS_SHARE: fx.share, HYLICS_DISK_TIER: disk };
  for (const [n, src] of [['v/idle.ts', 'idle.src'], ['v/served.ts', 'served.src']] as const) {
    const out = execFileSync(hylics, ['tier', 'put', n, join(fx.base, src)], { env, encoding: 'utf8' });
    assert.match(out, /memory tier/);
  }

  // only the module reads v/served.ts, from the client netns, several times per idle time
  let gets = 0;
  const get = async (): Promise<void> => {
    trace.push(`${new Date().toISOString()} GET ${gets}`);
    const r = await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', `${url}/served.ts`]);
    assert.equal(r.stdout, '200', `GET ${gets}: ${r.stdout} ${r.stderr}${why()}`);
    gets++;
  };
  // until the first use has reached the agent (its last use moved past the put's), the file is held open here, which
  // the idle sweep never moves: a first report later than the idle time (a loaded lighttpd) cannot evict it before
  // the rule under test applies; from then on only the module's reported uses keep it
  const servedPath = join(fx.share, 'v', 'served.ts');
  const putUse = (await stat(servedPath)).atimeMs;
  const held = await open(servedPath, 'r');
  try {
    await get();
    await waitFor('the first use of v/served.ts reported to the agent', async () => {
      if ((await stat(servedPath)).atimeMs > putUse) return true;
      await sleep(IDLE_MS / 5);
      await get();
      return false;
    }, 120_000);
  } finally {
    await held.close();
  }
  const end = Date.now() + WATCH_MS;
  while (Date.now() < end) {
    await sleep(IDLE_MS / 5);
    await get();
  }
  assert.ok(gets >= 5);
  await waitFor('the unserved file moved to the disk tier', () => existsSync(join(disk, 'v', 'idle.ts')) && !existsSync(join(fx.share, 'v', 'idle.ts')), 60_000);
  assert.ok(existsSync(servedPath) && !existsSync(join(disk, 'v', 'served.ts')), `the served file stayed in the share${why()}`);
  const body = await sh('sh', ['-c', `curl -sS ${url}/served.ts | sha256sum`], { ns: fx.clientNs });
  assert.equal(body.stdout.split(' ')[0], sha(served));
  assert.equal(sha(await readFile(join(disk, 'v', 'idle.ts'))), sha(idle), 'the moved file is intact');
  // a request for the moved file gets a 404 once; the guest then moves it back and the module serves it
  const first = await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', `${url}/idle.ts`]);
  assert.equal(first.stdout, '404');
  // (the 404 reaches the agent like a use: up to ~5 s later, more under load)
  await waitFor('the 404ed file back in the share', () => existsSync(join(fx.share, 'v', 'idle.ts')), 60_000);
  const back = await sh('sh', ['-c', `curl -sS -f ${url}/idle.ts | sha256sum`], { ns: fx.clientNs });
  assert.equal(back.stdout.split(' ')[0], sha(idle));
  await rm(join(fx.base, 'served.src'));
});
