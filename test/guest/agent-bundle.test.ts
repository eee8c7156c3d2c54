// The guest agent as one file for ordinary Debian/Ubuntu guests: bundled with esbuild, copied alone into a
// directory with no node_modules and no checkout, it connects to a host channel server and runs a command; the
// guest's systemd unit verifies and the cloud-init snippet installs the same command line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ChannelServer } from '../../src/host/channel/index.js';
import { NODE_BIN } from '../../src/os/self.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('the bundled agent runs from a lone file, connects and executes', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-agent-bundle-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const built = join(dir, 'build', 'hylics-agent.mjs');
  const b = spawnSync(NODE_BIN, [join(ROOT, 'scripts', 'build-agent.mjs'), built], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  const installed = join(dir, 'usr', 'local', 'lib', 'hylics', 'hylics-agent.mjs');
  await mkdir(dirname(installed), { recursive: true });
  await copyFile(built, installed);
  await rm(join(dir, 'build'), { recursive: true });

  const server = new ChannelServer();
  t.after(() => server.close());
  const chan = join(dir, 'channel.sock');
  await server.addGuest('lone', { mode: 'listen', path: chan });
  // cwd / and no NODE_PATH: nothing but the one file can be resolved
  const agent = spawn(NODE_BIN, [installed, '--name', 'lone', '--channel-unix', chan, '--app-socket', 'none', '--share', dir], { cwd: '/', env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  agent.stderr.on('data', (c: Buffer) => { log += c.toString(); });
  t.after(() => { agent.kill('SIGKILL'); });
  await server.waitConnected('lone', 60_000).catch((e: Error) => { throw new Error(`${e.message}\n${log}`); });
  const r = await server.request('lone', 'exec', { argv: ['sh', '-c', 'echo from-the-bundle; exit 3'], timeoutMs: 10_000 } as never, { timeoutMs: 20_000 }) as { exitCode: number; stdout: string };
  assert.equal(r.exitCode, 3);
  assert.match(Buffer.from(r.stdout, 'base64').toString(), /from-the-bundle/);
});

test('the guest unit verifies and cloud-init installs the same agent command line', async () => {
  const unit = join(ROOT, 'contrib', 'guest', 'hylics-agent.service');
  if (spawnSync('systemd-analyze', ['--version']).status === 0) {
    const v = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
  }
  const exec = /^ExecStart=(.*)$/m.exec(await readFile(unit, 'utf8'))![1];
  const ci = parse(await readFile(join(ROOT, 'contrib', 'guest', 'cloud-init.yaml'), 'utf8')) as { packages: string[]; mounts: string[][]; write_files: Array<{ path: string; content: string }>; runcmd: string[][] };
  assert.ok(ci.packages.includes('nodejs'));
  assert.deepEqual(ci.mounts[0]!.slice(0, 3), ['hylics', '/mnt/hylics', 'virtiofs']);
  assert.ok(ci.write_files[0]!.content.includes(`ExecStart=${exec}`));
  assert.ok(ci.runcmd.some((c) => c.includes('/usr/local/lib/hylics/hylics-agent.mjs')));
});
