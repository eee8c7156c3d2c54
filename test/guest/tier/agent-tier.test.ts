// The real agent process with its tier manager, a real host channel server, a tmpfs share and a disk-tier
// directory, and the in-guest `hylics` launcher the agent writes: tier put/path/ls, task run reports (with the
// tier), the host's tier.shrink and tier.stats over the channel, idle eviction, promotion after share.resized.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChannelServer } from '../../../src/host/channel/index.js';
import type { TaskEventT } from '../../../src/core/protocol/index.js';
import { HylicsError } from '../../../src/core/errors/index.js';
import { mountTmpfs, remountTmpfs, umountTmpfs } from '../../../src/os/tmpfs.js';
import { entryArgv, NODE_BIN } from '../../../src/os/self.js';
import { runCollect, type ProcResult } from '../../helpers/proc.js';

const skip = process.getuid?.() !== 0 ? 'needs root (mounts a tmpfs as the share)' : false;
const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: Buffer): Promise<ProcResult> =>
  runCollect(cmd, args, { env, ...(input ? { input } : {}) });

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('the in-guest hylics command loads no host-only code (modules resolved while each guest command runs)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), `hylics-guest-cli-${process.pid}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // a resolve hook that records every module the process loads (node:module register, Node >= 20.6)
  const log = join(dir, 'loaded.txt');
  await writeFile(join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }`);
  await writeFile(join(dir, 'register.mjs'), `import { register } from 'node:module'; register(${JSON.stringify(`file://${join(dir, 'hooks.mjs')}`)});`);
  const env = { HYLICS_AGENT_SOCKET: join(dir, 'none.sock'), HYLICS_SHARE: dir, HYLICS_DISK_TIER: join(dir, 'disk') };
  for (const args of [['--help'], ['task', 'run', 'x', '--', 'true'], ['tier', 'ls'], ['module', 'ls']]) {
    await writeFile(log, '');
    const r = await run(NODE_BIN, ['--import', `file://${join(dir, 'register.mjs')}`, ...entryArgv('cli/guest-main'), ...args], env);
    assert.ok(r.code === 0 || args[0] === 'module', `${args.join(' ')}: ${r.stderr}`);
    const loaded = (await readFile(log, 'utf8')).split('\n').filter((u) => u.startsWith('file://') && u.includes('/src/')).map((u) => u.slice(u.indexOf('/src/') + 5));
    assert.ok(loaded.some((f) => f.startsWith('cli/guest-main')), loaded.join(' '));
    assert.deepEqual(loaded.filter((f) => f.startsWith('host/') || /commands\/(daemon|demo|guest|control|sim|share|image|status)\./.test(f)), [], args.join(' '));
  }
});

test('agent tier manager: launcher on PATH, tier put/path/ls, task run reports, shrink and stats over the channel, idle eviction, promotion after share.resized', { skip, timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), `hylics-agent-tier-${process.pid}-`));
  const share = join(dir, 'share');
  const disk = join(dir, 'disk');
  const bin = join(dir, 'bin');
  await mkdir(share);
  await mountTmpfs(share, { sizeBytes: 16 * MiB, mode: 0o755 });
  t.after(async () => {
    await umountTmpfs(share, { lazy: true }).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });
  const chan = join(dir, 'channel.sock');
  const app = join(dir, 'agent.sock');
  const reports: TaskEventT[] = [];
  const server = new ChannelServer();
  server.handle('task.report', (_g, p: { events: TaskEventT[] }) => { reports.push(...p.events); return { accepted: p.events.length }; });
  t.after(() => server.close());
  const name = 'gt';
  await server.addGuest(name, { mode: 'listen', path: chan });
  let agent: ChildProcess | undefined;
  const logs: string[] = [];
  const startAgent = (idle: string): ChildProcess => {
    const a = spawn(NODE_BIN, [...entryArgv('guest/agent-main'), '--name', name, '--channel-unix', chan, '--app-socket', app, '--share', share,
      '--disk-tier', disk, '--bin-dir', bin, '--tier-idle', idle, '--tier-sweep', '250ms', '--tier-headroom', '64K', '--log-level', 'debug'], { stdio: ['ignore', 'ignore', 'pipe'] });
    a.stderr!.on('data', (b: Buffer) => logs.push(b.toString()));
    return a;
  };
  // no idle eviction until the restart: the LRU order of the shrink and the promotion below are this part's checks,
  // and an idle sweep running meanwhile (a loaded machine can take long between the puts and the shrink) would move
  // files first and change them; the restarted agent below has a 2 s idle time for its own check
  agent = startAgent('0');
  t.after(() => { if (agent && agent.exitCode === null) agent.kill('SIGKILL'); });
  await server.waitConnected(name, 30_000);
  const hylics = join(bin, 'hylics');
  await until('the launcher', () => existsSync(hylics) || undefined);
  const env = { HYLICS_AGENT_SOCKET: app, HYLICS_SHARE: share, HYLICS_DISK_TIER: disk };

  // the agent's commands see the launcher on PATH
  const which = await server.request(name, 'exec', { argv: ['sh', '-c', 'command -v hylics; echo "$HYLICS_DISK_TIER"'], timeoutMs: 10_000 }, { timeoutMs: 20_000 });
  assert.equal(Buffer.from(which.stdout, 'base64').toString(), `${hylics}\n${disk}\n`);

  // put: from a file and from stdin
  const data: Record<string, Buffer> = { 'v/a.ts': randomBytes(3 * MiB), 'v/b.ts': randomBytes(3 * MiB), 'c.bin': randomBytes(2 * MiB) };
  await writeFile(join(dir, 'a.src'), data['v/a.ts']!);
  let r = await run(hylics, ['tier', 'put', 'v/a.ts', join(dir, 'a.src'), '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).tier, 'memory');
  for (const n of ['v/b.ts', 'c.bin']) {
    r = await run(hylics, ['tier', 'put', n, '-'], env, data[n]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${n}: memory tier`));
  }
  // bad names: stable codes, nothing created
  for (const [n, c] of [['../x', 'HYLICS_ERR_TIER_ESCAPE'], ['/etc/passwd', 'HYLICS_ERR_TIER_ESCAPE'], ['a//b', 'HYLICS_ERR_TIER_BAD_NAME']] as const) {
    r = await run(hylics, ['tier', 'path', n], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`error ${c}`));
  }
  r = await run(hylics, ['tier', 'path', 'nope'], env);
  assert.match(r.stderr, /error HYLICS_ERR_TIER_NOT_FOUND/);

  // path through the agent: counted (hit)
  r = await run(hylics, ['tier', 'path', 'v/a.ts', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout) as { path: string; tier: string; foundIn: string; counted: boolean };
  assert.deepEqual([p.path, p.tier, p.foundIn, p.counted], [join(share, 'v/a.ts'), 'memory', 'memory', true]);

  // task run: exit code and output through, reports with the tier reach the host
  r = await run(hylics, ['task', 'run', 'transcode', '--tier-hit', '--', 'sh', '-c', 'cat; echo err >&2; exit 4'], env, Buffer.from('in->out'));
  assert.deepEqual([r.code, r.stdout, r.stderr], [4, 'in->out', 'err\n']);
  const end = await until('the end report', () => reports.find((e) => e.kind === 'end' && e.name === 'transcode'));
  assert.equal(end.ok, false);
  assert.equal(end.tier, 'memory');
  assert.equal(end.error, 'exit 4');
  assert.ok(reports.some((e) => e.kind === 'start' && e.id === end.id));
  r = await run(hylics, ['task', 'run', 'sig', '--', 'sh', '-c', 'kill -TERM $$'], env);
  assert.equal(r.signal, 'SIGTERM');
  await until('the signal report', () => reports.find((e) => e.kind === 'end' && e.name === 'sig' && e.error === 'killed by SIGTERM'));
  // agent absent: the command runs all the same
  r = await run(hylics, ['task', 'run', 'lonely', '--', 'sh', '-c', 'echo ran; exit 0'], { ...env, HYLICS_AGENT_SOCKET: join(dir, 'no-agent.sock') });
  assert.deepEqual([r.code, r.stdout], [0, 'ran\n']);

  // the host: stats and shrink over the real channel; tier.path is not the host's to call
  let st = await server.request(name, 'tier.stats', {});
  assert.deepEqual([st.memoryFiles, st.memoryBytes, st.diskFiles, st.hits, st.misses], [3, 8 * MiB, 0, 1, 0]);
  await assert.rejects(server.request(name, 'tier.path', { name: 'c.bin' }), (e: unknown) => e instanceof HylicsError);
  await sleep(50);
  const shrink = await server.request(name, 'tier.shrink', { targetUsedBytes: 4 * MiB, deadlineMs: 10_000 }, { timeoutMs: 20_000 });
  assert.equal(shrink.ok, true, JSON.stringify(shrink));
  assert.ok(shrink.usedBytes <= 4 * MiB);
  // LRU: b and c were put after a, but a was looked up since: b goes first, then c
  const tiers = JSON.parse((await run(hylics, ['tier', 'ls', '--json'], env)).stdout) as Array<{ name: string; tier: string }>;
  assert.deepEqual(Object.fromEntries(tiers.map((e) => [e.name, e.tier])), { 'c.bin': 'disk', 'v/a.ts': 'memory', 'v/b.ts': 'disk' });
  for (const [n, b] of Object.entries(data)) {
    const where = JSON.parse((await run(hylics, ['tier', 'path', n, '--no-promote', '--json'], env)).stdout) as { path: string };
    assert.equal(sha(await readFile(where.path)), sha(b), n);
  }
  st = await server.request(name, 'tier.stats', {});
  assert.deepEqual([st.diskFiles, st.evictions, st.hits, st.misses], [2, 2, 2, 2]);

  // the share grows and the host says so: recently used disk-tier files come back (they fit now)
  await remountTmpfs(share, { sizeBytes: 32 * MiB });
  assert.ok(server.emitEvent(name, 'share.resized', { sizeBytes: 32 * MiB }));
  await until('promotion after share.resized', async () => {
    const s = await server.request(name, 'tier.stats', {});
    return s.diskFiles === 0 ? s : undefined;
  });

  // agent restart (SIGKILL): last-use times (atime) survive, nothing lost
  const ls = JSON.parse((await run(hylics, ['tier', 'ls', '--json'], env)).stdout) as Array<{ name: string; lastUse: string }>;
  agent.kill('SIGKILL');
  await new Promise((res) => agent!.once('exit', res));
  agent = startAgent('2s');
  await server.waitConnected(name, 30_000);
  const ls2 = JSON.parse((await run(hylics, ['tier', 'ls', '--json'], env)).stdout) as Array<{ name: string; lastUse: string }>;
  // (the new agent's 2 s idle sweep may already be moving them: a move keeps atime to well under a millisecond)
  const lastUse = (l: Array<{ name: string; lastUse: string }>): Record<string, number> =>
    Object.fromEntries(l.map((e) => [e.name, Date.parse(e.lastUse)]));
  const [u1, u2] = [lastUse(ls), lastUse(ls2)];
  assert.deepEqual(Object.keys(u2).sort(), Object.keys(u1).sort());
  for (const n of Object.keys(u1)) assert.ok(Math.abs(u1[n]! - u2[n]!) <= 1, `${n}: ${u1[n]} vs ${u2[n]}`);

  // idle eviction: nothing used for 2 s moves to the disk tier
  await until('idle eviction', async () => {
    const s = await server.request(name, 'tier.stats', {});
    return s.memoryFiles === 0 && s.diskFiles === 3 ? s : undefined;
  }, 60_000);
  for (const [n, b] of Object.entries(data)) assert.equal(sha(await readFile(join(disk, n))), sha(b), n);
  assert.deepEqual(readdirSync(share, { recursive: true }).filter((f) => String(f).includes('.hylics-tmp')), []);
  assert.ok(logs.join('').includes('idle files moved to the disk tier'));
});
