// Sends by socket offload count as uses for the guest's tiered store (docs/tier.md, "Sends by socket offload"): a
// real daemon, a sandbox guest with a 6 s tier idle time (set at guest create), the example file server in it with
// --offload socket, a client in its own network namespace routed through the host. The host's view of the share is
// remounted noatime first, so the host's own reads cannot move atime and only the explicit path (socket offload ->
// tier.used -> the agent) can keep the file: a file the host keeps sending stays in the memory tier well past the
// idle time and every GET is 200 and byte-exact; a file nobody asks for moves to the disk tier meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { GuestView } from '../../../src/core/api.js';
import { run } from '../../../src/os/exec.js';
import { NODE_BIN, entryArgv } from '../../../src/os/self.js';
import { tcpRepairAvailable } from '../../../src/os/tcp-repair.js';
import { startDaemon, stateDirCli, stopDaemon, tempStateDir } from '../../helpers/cli.js';
import { clientNetns, type NsExecResult } from '../../helpers/net-probe.js';
import { has } from '../../helpers/proc.js';

const skip = process.getuid?.() !== 0 ? 'needs root (daemon, namespaces, nftables, TCP_REPAIR)'
  : !has('nft') ? 'needs nft (apt-get install nftables)'
    : !has('curl') ? 'needs curl'
      : !tcpRepairAvailable().ok ? `native addon: ${tcpRepairAvailable().reason}` : false;
/** The guest's tier idle time. */
const IDLE_MS = 6000;
/** How long the client keeps fetching once the first send reached the agent: well past the idle time (and past
 * several sweeps). */
const WATCH_MS = 5 * IDLE_MS;
const CURL_TIMEOUT_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('socket offload sends keep a file in the memory tier past the idle time', { skip, timeout: 600_000 }, async (t) => {
  const dir = await tempStateDir('hylics-sockuse-');
  const tag = `${process.pid % 100000}`;
  const g = `su${tag}`;
  const oct = 16 + (process.pid % 200);
  const w = clientNetns({ name: `hylics-suw-${tag}`, hostIf: `hsu${tag}`, hostAddr: `10.252.${oct}.1`, addr: `10.252.${oct}.2` });
  const PORT = 8080;
  let daemon: ChildProcess | undefined = await startDaemon(dir);
  const { cli, inGuest } = stateDirCli(dir);
  t.after(async () => {
    if (daemon) { await cli('guest', 'rm', g); await stopDaemon(daemon); daemon = undefined; }
    await w.remove();
    await rm(dir, { recursive: true, force: true });
  });

  const c = await cli('guest', 'create', g, '--share-size', '16M', '--memory', '256M', '--tier-idle', `${IDLE_MS}ms`, '--json');
  assert.equal(c.code, 0, c.stderr + c.stdout);
  const v = JSON.parse(c.stdout) as GuestView;
  // the host's reads must not move atime here (a strictatime share's would): only tier.used can keep the file
  await run('mount', ['-o', 'remount,noatime', v.share.path]);

  // the client namespace, routed through the host
  await w.create();
  /** curl in the client namespace. */
  const inW = (args: string[]): Promise<NsExecResult> => w.exec('curl', args, CURL_TIMEOUT_MS);

  // the file server first (it serves the share's root), then both files through the store, the served one last
  const node = [NODE_BIN, ...entryArgv('cli/main')].join(' ');
  await inGuest(g, `${node} example file-server --root /mnt/hylics --port ${PORT} --offload socket > /run/hylics/file-server.log 2>&1 &`);
  const base = `http://${v.address}:${PORT}`;
  for (let i = 0; ; i++) {
    const r = await inW(['-s', '-o', '/dev/null', '-w', '%{http_code}', `${base}/none`]);
    if (r.stdout.toString() === '404') break;
    assert.ok(i < 100, `the file server in the guest did not come up: ${r.stderr}`);
    await sleep(200);
  }
  const before = (JSON.parse((await cli('guest', 'show', g, '--json')).stdout) as GuestView).offload?.socket;
  // served.bin is held open in the guest (a process the idle sweep sees: never moved) from its put until the first
  // send reached the agent, so a loaded host's slow exec and first GET cannot let it go idle before the rule under
  // test applies; from then on only the host's tier.used reports keep it
  const out = (await inGuest(g, 'for f in idle.bin served.bin; do head -c 262144 /dev/urandom > /tmp/$f && hylics tier put $f /tmp/$f >/dev/null && sha256sum /tmp/$f || exit 1; done; '
    + '(exec 3</mnt/hylics/served.bin; exec sleep 600) </dev/null >/dev/null 2>&1 & echo "holder $!"')).trim().split('\n');
  const holder = out.pop()!.split(' ')[1]!;
  const sums = Object.fromEntries(out.map((l) => { const [h, p] = l.split(/\s+/); return [p!.split('/').pop()!, h!]; }));
  type TierEntry = { name: string; tier: string; lastUse: string };
  const tierLs = async (): Promise<TierEntry[]> => JSON.parse(await inGuest(g, 'hylics tier ls --json')) as TierEntry[];
  const lastUse = async (): Promise<number> => Date.parse((await tierLs()).find((e) => e.name === 'served.bin')?.lastUse ?? '');
  const putUse = await lastUse();

  let gets = 0;
  const get = async (): Promise<void> => {
    const r = await inW(['-sS', '-f', `${base}/served.bin`]);
    assert.equal(r.code, 0, `GET ${gets}: ${r.stderr}`);
    assert.equal(createHash('sha256').update(r.stdout).digest('hex'), sums['served.bin'], `GET ${gets} byte-exact`);
    gets++;
  };
  await get();
  for (const end = Date.now() + 120_000; !((await lastUse()) > putUse); await get()) {
    assert.ok(Date.now() < end, 'the first send of served.bin reached the agent (its last use moved past the put)');
    await sleep(IDLE_MS / 4);
  }
  await inGuest(g, `kill ${holder}`);
  for (const end = Date.now() + WATCH_MS; Date.now() < end;) {
    await sleep(IDLE_MS / 4);
    await get();
  }
  let ls = await tierLs();
  const tierOf = (n: string) => ls.find((e) => e.name === n)?.tier;
  // (idle.bin went long ago unless the guest's sweep is far behind on a loaded host: awaited, not checked at a point)
  for (const end = Date.now() + 60_000; tierOf('idle.bin') !== 'disk' && Date.now() < end; await sleep(500))
    ls = await tierLs();
  assert.equal(tierOf('idle.bin'), 'disk', `nobody asked for idle.bin: it left the share (${JSON.stringify(ls)})`);
  assert.equal(tierOf('served.bin'), 'memory', `served.bin, sent by the host ${gets} times, stayed in the share (${JSON.stringify(ls)})`);
  // every body went by the host: a send in the guest (a fallback) would read the file through the guest's own
  // (strictatime) view and count as a use by itself, proving nothing here
  const after = (JSON.parse((await cli('guest', 'show', g, '--json')).stdout) as GuestView).offload?.socket;
  const serverLog = await inGuest(g, 'cat /run/hylics/file-server.log');
  assert.ok(before && after, 'offload stats in guest show');
  assert.ok(after.handoffs > before.handoffs, `handoffs counted (${before.handoffs} -> ${after.handoffs})`);
  assert.doesNotMatch(serverLog, /sent in the guest/, `no body sent in the guest:\n${serverLog}`);
  t.diagnostic(`handoffs counted by the host: ${after.handoffs - before.handoffs}; file server: ${serverLog.trim().split('\n').at(-1)}`);
  t.diagnostic(`${gets} GETs over ${WATCH_MS} ms with the tier idle time at ${IDLE_MS} ms`);
});
