// The daemon side of a libvirt-adopted domain, end to end on this machine (no libvirtd here: see docs/microvm.md):
// `hylics guest adopt --libvirt` registers the domain with a real hylicsd (share tmpfs, routed tap, channel socket
// directory) and edits its XML to name them (virt-xml-validate, byte-identical on a second run); the libvirt hook
// (contrib/libvirt/qemu) is run as libvirtd runs it (XML on stdin) and changes nothing, leaves foreign domains alone
// and brings a stopped registration back. Then the domain is started the way libvirt would start the adopted XML
// (QEMU binds the channel socket, virtiofsd serves the daemon's share, the tap is the daemon's) with the project's
// microVM image, the single-file agent installed as an operator does (the bundle hylicsd put in the share, run with
// the command line of contrib/guest/hylics-agent.service), and it connects to hylicsd over virtio-serial: guest
// exec, files both ways, a daemon restart re-adopts it, `guest rm` is refused while it runs and cleans up after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { MicrovmDriver } from '../../src/host/drivers/microvm.js';
import { AGENT_BUNDLE } from '../../src/host/drivers/libvirt.js';
import type { DriverContext, DriverState } from '../../src/host/drivers/types.js';
import type { GuestView } from '../../src/core/api.js';
import { run } from '../../src/os/image/run.js';
import { tapExists } from '../../src/os/qemu.js';
import { NODE_BIN, PACKAGE_ROOT, entryArgv } from '../../src/os/self.js';
import { GUEST_SHARE } from '../../src/os/image/init.js';
import { errorCode, hylics, startDaemon, stopDaemon, tempStateDir } from '../helpers/cli.js';
import { domainXml } from '../helpers/libvirt-domain.js';
import { runCollect, waitFor, type ProcResult } from '../helpers/proc.js';
import { MiB } from '../../src/core/units.js';

const skip = process.getuid?.() !== 0 ? 'needs root (tmpfs, tap, virtiofsd namespaces)'
  : !existsSync('/usr/lib/qemu/virtiofsd') ? 'needs qemu-system-x86 (virtiofsd)'
  : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun'
  : !existsSync('/usr/bin/virt-xml-validate') ? 'needs virt-xml-validate (Debian package libvirt-clients)' : false;

const HOOK = join(PACKAGE_ROOT, 'contrib', 'libvirt', 'qemu');
const UNIT = join(PACKAGE_ROOT, 'contrib', 'guest', 'hylics-agent.service');
/** The adopted domain's memory (768 MiB), as libvirt would give QEMU. */
const DOMAIN_MEMORY_KIB = 786_432;

/** Run the hook as libvirtd does: `qemu DOMAIN OPERATION SUB-OP EXTRA`, the domain XML on stdin. */
function runHook(stateDir: string, args: string[], xml: string): Promise<ProcResult> {
  const env = { HYLICS: [NODE_BIN, ...entryArgv('cli/main')].join(' '), HYLICS_STATE_DIR: stateDir };
  return runCollect(HOOK, args, { env, input: xml });
}

async function show(stateDir: string, name: string): Promise<GuestView> {
  const r = await hylics(['guest', 'show', name, '--json', '--state-dir', stateDir]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as GuestView;
}

test('libvirt-adopted domain: hylicsd keeps share, channel and tap; the hook is idempotent; the bundled agent connects from the microVM image', { skip, timeout: 1_200_000 }, async (t) => {
  if (!existsSync(AGENT_BUNDLE)) await run(NODE_BIN, [join(PACKAGE_ROOT, 'scripts', 'build-agent.mjs')]);
  const stateDir = await tempStateDir('hylv-');
  const work = await mkdtemp(join(tmpdir(), 'hylv-work-'));
  const name = `lv${process.pid % 100000}`;
  let daemon = await startDaemon(stateDir);
  let vm: { driver: MicrovmDriver; ctx: DriverContext; state: DriverState } | undefined;
  t.after(async () => {
    if (vm) await vm.driver.stop(vm.ctx, vm.state, 2000).catch(() => undefined);
    if (vm) await vm.driver.cleanup(vm.ctx, vm.state).catch(() => undefined);
    await hylics(['guest', 'rm', name, '--state-dir', stateDir]);
    await stopDaemon(daemon);
    await rm(work, { recursive: true, force: true });
    await rm(stateDir, { recursive: true, force: true });
  });

  // 1. adopt: registration + the XML edit, twice
  await writeFile(join(work, 'in.xml'), domainXml({ name, memoryKiB: DOMAIN_MEMORY_KIB }));
  const a1 = await hylics(['--json', 'guest', 'adopt', '--libvirt', name, '--xml', join(work, 'in.xml'), '--output', join(work, 'out.xml'), '--share-size', '32M', '--state-dir', stateDir]);
  assert.equal(a1.code, 0, a1.stderr);
  const s1 = JSON.parse(a1.stdout) as {
    changed: string[];
    registered: boolean;
    share: string;
    channel: string;
    network: { tap: string };
  };
  assert.equal(s1.registered, true);
  assert.deepEqual(s1.changed, ['memoryBacking memfd shared', 'virtio-fs share', 'virtio-serial channel', 'routed network', 'metadata']);
  const xml = await readFile(join(work, 'out.xml'), 'utf8');
  const v = await run('virt-xml-validate', [join(work, 'out.xml'), 'domain'], { allowFail: true });
  assert.equal(v.code, 0, v.stdout + v.stderr);
  let g = await show(stateDir, name);
  assert.equal(g.driver, 'libvirt');
  assert.equal(g.status, 'running');
  assert.equal(g.agentConnected, false); // the domain is not running yet
  assert.equal(g.share.mounted, true);
  assert.equal(g.share.sizeBytes, 32 * MiB);
  assert.equal(s1.share, g.share.path);
  assert.ok(xml.includes(`<source dir="${g.share.path}"/>`));
  assert.ok(xml.includes(`path="${s1.channel}"`));
  assert.ok(xml.includes(`<target dev="${s1.network.tap}" managed="no"/>`));
  assert.ok(xml.includes('share-size="32M"'));
  assert.ok(await tapExists(s1.network.tap), 'the routed tap hylicsd keeps for the domain');
  assert.ok(existsSync(join(g.share.path, '.hylics', 'hylics-agent.mjs')), 'the agent bundle is in the share');
  const a2 = await hylics(['--json', 'guest', 'adopt', '--libvirt', name, '--xml', join(work, 'out.xml'), '--state-dir', stateDir]);
  assert.equal(a2.code, 0, a2.stderr);
  const s2 = JSON.parse(a2.stdout) as { changed: string[]; xml: string };
  assert.deepEqual(s2.changed, []);
  assert.equal(s2.xml, xml);

  // 2. the hook, as libvirtd runs it
  const h1 = await runHook(stateDir, [name, 'prepare', 'begin', '-'], xml);
  assert.equal(h1.code, 0, h1.stderr);
  assert.equal(h1.stderr, '', 'no drift between the XML and what hylicsd holds');
  const other = `lvx${process.pid % 100000}`;
  const h2 = await runHook(stateDir, [other, 'prepare', 'begin', '-'], domainXml({ name: other, memoryKiB: DOMAIN_MEMORY_KIB }));
  assert.equal(h2.code, 0, h2.stderr);
  assert.equal(errorCode(await hylics(['guest', 'show', other, '--state-dir', stateDir])), 'HYLICS_ERR_GUEST_NOT_FOUND', 'a foreign domain is not registered');
  assert.equal((await runHook(stateDir, [name, 'release', 'end', '-'], xml)).code, 0);
  const stop = await hylics(['guest', 'stop', name, '--state-dir', stateDir]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(await tapExists(s1.network.tap), false, 'a stopped registration gives its tap back');
  const h3 = await runHook(stateDir, [name, 'prepare', 'begin', '-'], xml);
  assert.equal(h3.code, 0, h3.stderr);
  assert.equal(h3.stderr, '');
  g = await show(stateDir, name);
  assert.equal(g.status, 'running');
  assert.ok(await tapExists(s1.network.tap));

  // 3. "libvirt" starts the domain: the project's microVM image on the adopted devices, the agent as the unit runs it
  const unit = await readFile(UNIT, 'utf8');
  const execStart = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(/\s+/);
  assert.equal(execStart[0], '/usr/bin/node');
  const agentArgv = [NODE_BIN, `${GUEST_SHARE}/.hylics/hylics-agent.mjs`, ...execStart.slice(2)];
  const index = Number(s1.network.tap.replace(/^hyh/, ''));
  const vmDir = join(work, 'vm');
  const ctx: DriverContext = {
    spec: { name, driver: 'microvm', shareSizeBytes: 32 * MiB, cpus: 2, memoryBytes: 768 * MiB },
    paths: { dir: vmDir, share: g.share.path, run: join(s1.channel, '..'), logs: join(vmDir, 'logs') },
    network: { index, hostIf: s1.network.tap, guestIf: `hyg${index}`, hostAddr: g.hostAddress, guestAddr: g.address, prefixLen: 24, netns: '' },
    stateDir: work, log: pino({ level: 'silent' }),
  };
  const driver = new MicrovmDriver({ stateDir: work, log: ctx.log, diskBytes: 128 * MiB, agentArgv });
  vm = { driver, ctx, state: await driver.start(ctx) };
  assert.equal(join(ctx.paths.run, 'channel.sock'), s1.channel, 'QEMU binds the socket the adopted XML names');
  await waitFor('the agent to connect to hylicsd', async () => ((await show(stateDir, name)).agentConnected ? true : undefined), 600_000, 500);
  const ex = await hylics(['guest', 'exec', name, '--state-dir', stateDir, '--', 'sh', '-c', `uname -r; cat ${GUEST_SHARE}/.hylics/init-ok; echo from-guest > ${GUEST_SHARE}/g.txt`]);
  assert.equal(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, new RegExp(`${name} `), 'the microVM image\'s init wrote its marker into the share');
  assert.equal(await readFile(join(g.share.path, 'g.txt'), 'utf8'), 'from-guest\n');
  await writeFile(join(g.share.path, 'h.txt'), 'from-host\n');
  const rd = await hylics(['guest', 'exec', name, '--state-dir', stateDir, '--', 'cat', `${GUEST_SHARE}/h.txt`]);
  assert.equal(rd.stdout, 'from-host\n');

  // 4. a daemon restart re-adopts the running domain; rm is refused while it runs
  await stopDaemon(daemon);
  daemon = await startDaemon(stateDir);
  await waitFor('the agent to reconnect after the daemon restart', async () => ((await show(stateDir, name)).agentConnected ? true : undefined), 120_000, 500);
  const again = await hylics(['guest', 'exec', name, '--state-dir', stateDir, '--', 'cat', `${GUEST_SHARE}/g.txt`]);
  assert.equal(again.stdout, 'from-guest\n');
  const refused = await hylics(['guest', 'rm', name, '--state-dir', stateDir]);
  assert.equal(errorCode(refused), 'HYLICS_ERR_CONFLICT', refused.stderr);
  assert.equal((await show(stateDir, name)).share.mounted, true);

  // 5. libvirt shuts the domain down; then rm takes share, tap and socket directory away
  await driver.stop(ctx, vm.state, 5000);
  await driver.cleanup(ctx, vm.state);
  vm = undefined;
  // what this stand-in for libvirt left beside the channel socket (libvirt keeps its own files elsewhere)
  for (const f of await readdir(ctx.paths.run)) if (f !== 'channel.sock') await rm(join(ctx.paths.run, f), { recursive: true, force: true });
  const rmr = await hylics(['guest', 'rm', name, '--state-dir', stateDir]);
  assert.equal(rmr.code, 0, rmr.stderr);
  assert.equal(await tapExists(s1.network.tap), false);
  assert.equal(existsSync(join(s1.channel, '..')), false);
  assert.equal(existsSync(g.share.path), false);
});
