// Module offload end to end: the real daemon, a real sandbox guest, the real CLI (`hylics module ...`), files and
// an HLS stream written by programs running in the guest, read by curl / ffprobe on the host through the guest's
// own address (nft steering to the host-side worker).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { hylics, startDaemon, stopDaemon, tempStateDir } from '../../helpers/cli.js';
import type { ModuleInfo } from '../../../src/host/modules/index.js';

const hasTools = ((): boolean => { try { execFileSync('which', ['curl', 'ffmpeg', 'ffprobe', 'nft'], { stdio: 'ignore' }); return true; } catch { return false; } })();
const skip = process.getuid?.() !== 0 ? 'needs root (daemon: mounts, namespaces, nftables)' : hasTools ? false : 'needs curl, ffmpeg, nft';

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

test('hylics module start/ls/stop on a sandbox guest: curl and ffprobe through the guest address', { skip, timeout: 300_000 }, async (t) => {
  const dir = await tempStateDir('hylics-mod-e2e-');
  const guest = `mod${process.pid % 100000}`;
  let daemon: ChildProcess | undefined = await startDaemon(dir);
  const cli = async (
    args: string[],
    json = true,
  ): Promise<{ code: number | null; out: unknown; stdout: string; stderr: string }> => {
    const r = await hylics([...args.slice(0, 2), '--state-dir', dir, ...(json ? ['--json'] : []), ...args.slice(2)]);
    let out: unknown;
    try {
      out = JSON.parse(r.stdout);
    } catch {
      out = undefined;
    }
    return { code: r.code, out, stdout: r.stdout, stderr: r.stderr };
  };
  t.after(async () => {
    if (daemon) { await cli(['guest', 'rm', guest], false); await stopDaemon(daemon); daemon = undefined; }
    await rm(dir, { recursive: true, force: true });
  });

  // no idle eviction (--tier-idle 0): the content is written into the share directly and first read by the modules
  // only after both started, which on a loaded machine can outlast the 60 s default idle time (not this test's subject)
  const g = await cli(['guest', 'create', guest, '--share-size', '128M', '--tier-idle', '0']);
  assert.equal(g.code, 0, g.stderr + g.stdout);
  const addr = (g.out as { address: string }).address;
  // the guest writes its content into its own share (the daemon's exec runs inside the guest)
  const w = await cli(['guest', 'exec', guest, '--', 'sh', '-c',
    'mkdir -p /mnt/hylics/www /mnt/hylics/media && head -c 3000000 /dev/urandom > /mnt/hylics/www/big.bin && ln -s /etc/shadow /mnt/hylics/www/evil'
    + ' && ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc=size=160x120:rate=10 -t 4 -c:v libx264 -preset ultrafast -g 10'
    + ' -f hls -hls_time 1 -hls_playlist_type vod /mnt/hylics/media/v.m3u8 && sha256sum /mnt/hylics/www/big.bin'], false);
  assert.equal(w.code, 0, w.stderr + w.stdout);
  const sha = /^([0-9a-f]{64})/m.exec(w.stdout)?.[1];
  assert.ok(sha, w.stdout);

  const h = await cli(['module', 'start', guest, '--kind', 'http', '--root', 'www', '--port', '80']);
  assert.equal(h.code, 0, h.stderr + h.stdout);
  const http = h.out as ModuleInfo;
  assert.deepEqual(http.urls, [`http://${addr}:80/`]);
  // the guest's engine, through the API: the daemon's default auto, lighttpd for an http-only guest with no evidence
  assert.equal(http.engine?.setting, 'auto');
  assert.match(http.engine?.reason ?? '', /no traffic evidence yet|lighttpd is not installed/);
  const s = await cli(['module', 'start', guest, '--kind', 'stream', '--root', '/media', '--port', '8080']);
  assert.equal(s.code, 0, s.stderr + s.stdout);
  const text = await cli(['module', 'ls', guest], false);
  assert.match(text.stdout, new RegExp(`${http.id}\\s+http\\s+www\\s+http://${addr.replace(/\./g, '\\.')}:80/`));

  const body = await run('sh', ['-c', `curl -sS http://${addr}/big.bin | sha256sum`]);
  assert.equal(body.stdout.split(' ')[0], sha);
  const range = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', '-r', '100-199', `http://${addr}/big.bin`]);
  assert.equal(range.stdout, '206 100');
  assert.equal((await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${addr}/evil`])).stdout, '403');
  const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', `http://${addr}:8080/v.m3u8`]);
  assert.equal(probe.code, 0, probe.stderr);
  assert.ok(Math.abs(Number(probe.stdout) - 4) < 1, probe.stdout);

  const bad = await cli(['module', 'start', guest, '--kind', 'http', '--root', '../..', '--port', '81']);
  assert.equal(bad.code, 1);
  assert.equal((bad.out as { error: { code: string } }).error.code, 'HYLICS_ERR_MODULE_ROOT');
  const other = await cli(['module', 'stop', 'no-such-guest', http.id]);
  assert.notEqual(other.code, 0);

  // the bytes reach the totals once the engine wrote its access log (nginx: every second) and hylicsd read it (every
  // second): awaited, not read after a fixed sleep (1.5 s was less than those two on a loaded machine)
  let mods: ModuleInfo[] = [];
  for (const end = Date.now() + 60_000; ; await new Promise((r) => setTimeout(r, 250))) {
    mods = (await cli(['module', 'ls', guest])).out as ModuleInfo[];
    if ((mods.find((m) => m.id === http.id)?.totals.bytes ?? 0) >= 3_000_000 || Date.now() > end) break;
  }
  assert.deepEqual(mods.map((m) => m.kind).sort(), ['http', 'stream']);
  assert.equal(mods[0]!.engine?.kind, 'nginx', 'a stream module: nginx');
  assert.match(mods[0]!.engine!.reason, /a stream module/);
  assert.match((await cli(['module', 'ls', guest], false)).stdout, /^engine: nginx \(module-engine auto: a stream module/m);
  const shown = (await cli(['guest', 'show', guest])).out as { modules?: { engine: { kind?: string; switches: number } } };
  assert.equal(shown.modules?.engine.kind, 'nginx', 'guest show: the guest\'s module engine');
  assert.ok(mods.find((m) => m.id === http.id)!.totals.bytes >= 3_000_000, JSON.stringify(mods.map((m) => m.totals)));

  for (const m of mods) assert.equal((await cli(['module', 'stop', guest, m.id], false)).code, 0);
  assert.deepEqual((await cli(['module', 'ls', guest])).out, []);
  const gone = await run('curl', ['-sS', '--max-time', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://${addr}/big.bin`]);
  assert.notEqual(gone.stdout, '200');
});
