// `hylics demo`: the main job on a fresh host, end to end and real. With a temporary state dir it starts hylicsd,
// creates a guest, has the guest write into its share and the host read it back (and the reverse), runs a
// compression-and-delivery task in the guest under track() (delivery offloaded to the host's http module when
// it is available, plus an in-guest server for comparison), prints a summary, and removes everything again.
import type { Command } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecResult, GuestView } from '../../core/api.js';
import { HylicsError } from '../../core/errors/index.js';
import { formatSize } from '../../core/units.js';
import { GUEST_SHARE_DIR } from '../../core/guest-layout.js';
import { NODE_BIN, entryArgv } from '../../os/self.js';
import { apiRequest } from '../client.js';
import { printJson } from '../output.js';

interface DemoOpts { driver: string; keep?: boolean; json?: boolean; shareSize: string; dataSize?: string }

const GUEST = 'demo';

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** GET a URL, return the body's sha256, size and seconds taken (a real HTTP client, not a shortcut). */
function fetchDigest(
  url: string,
  timeoutMs = 60_000,
): Promise<{ status: number; bytes: number; sha256: string; seconds: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: timeoutMs }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        h.update(c);
        bytes += c.length;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          bytes,
          sha256: h.digest('hex'),
          seconds: Number(process.hrtime.bigint() - t0) / 1e9,
        }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function retry<T>(fn: () => Promise<T>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try { return await fn(); } catch (e) {
      if (Date.now() > deadline) throw new HylicsError('HYLICS_ERR_TIMEOUT', `${what}: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export function register(program: Command): void {
  program.command('demo')
    .description('run Hylics end to end on a temporary state dir: daemon, guest, shared files, compression + delivery, cleanup')
    .option('--driver <kind>', 'sandbox | microvm', 'sandbox')
    .option('--share-size <size>', 'share size of the demo guest', '128M')
    .option('--data-size <size>', 'size of the data set compressed and delivered (default 32M; 8M for microvm, which may be emulated)')
    .option('--keep', 'leave the daemon and guest running at the end (prints how to reach them)')
    .option('--json', 'print the summary as JSON')
    .action(async (o: DemoOpts) => { await runDemo(o); });
}

async function runDemo(o: DemoOpts): Promise<void> {
  o.dataSize ??= o.driver === 'microvm' ? '8M' : '32M';
  if (process.getuid?.() !== 0) throw new HylicsError('HYLICS_ERR_NOT_ROOT', 'the demo needs root: it mounts a tmpfs and creates namespaces and cgroups (run it with sudo)');
  const steps = 7;
  let n = 0;
  const t0 = Date.now();
  const step = (msg: string): void => { process.stderr.write(`[${++n}/${steps}] ${msg}\n`); };
  const done = (extra = ''): void => { process.stderr.write(`      ok${extra ? ': ' + extra : ''} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`); };
  const stateDir = await mkdtemp(join(tmpdir(), 'hylics-demo-'));
  let daemon: ChildProcess | undefined;
  let guestCreated = false;
  let guestRemoved = false;
  const summary: Record<string, unknown> = { driver: o.driver, stateDir };
  try {
    step(`starting hylicsd on ${stateDir}`);
    const logFile = await open(join(stateDir, 'hylicsd.log'), 'a');
    // The microVM image and KVM probe are cached host-wide, not in the temporary state dir: later demos start fast.
    const env = { ...process.env, HYLICS_CACHE_DIR: process.env.HYLICS_CACHE_DIR || '/var/cache/hylics' };
    daemon = spawn(NODE_BIN, [...entryArgv('cli/main'), 'daemon', '--state-dir', stateDir], { stdio: ['ignore', logFile.fd, logFile.fd], detached: !!o.keep, env });
    await logFile.close();
    const exited = new Promise<never>((_, reject) => daemon!.once('exit', (code) => reject(new HylicsError('HYLICS_ERR_INTERNAL', `hylicsd exited (${code}); see ${join(stateDir, 'hylicsd.log')}`))));
    exited.catch(() => undefined);
    await Promise.race([retry(() => apiRequest(stateDir, 'GET', '/v1/status', undefined, 2000), 20_000, 'hylicsd did not come up'), exited]);
    done(`pid ${daemon.pid}`);

    step(`creating guest "${GUEST}" (driver ${o.driver}, share ${o.shareSize}, 1 CPU, 512M)`);
    const g = await apiRequest<GuestView>(stateDir, 'POST', '/v1/guests', { name: GUEST, driver: o.driver, shareSize: o.shareSize, cpus: 1, memory: '512M' });
    guestCreated = true;
    done(`address ${g.address}, share ${g.share.path}`);
    summary.guest = { address: g.address, share: g.share.path };

    const exec = async (argv: string[], timeoutMs = 120_000): Promise<ExecResult> => {
      const r = await apiRequest<ExecResult>(stateDir, 'POST', `/v1/guests/${GUEST}/exec`, { argv, timeoutMs });
      if (r.exitCode !== 0) throw new HylicsError('HYLICS_ERR_INTERNAL', `in the guest, ${argv.join(' ')} failed (${r.exitCode ?? r.signal}): ${r.stderr.slice(-500)}`);
      return r;
    };

    step('the guest writes into its share, the host reads it back');
    const w = await exec(['sh', '-c', 'head -c 4194304 /dev/urandom > /mnt/hylics/from-guest.bin && sha256sum /mnt/hylics/from-guest.bin']);
    const guestSum = w.stdout.split(/\s+/)[0]!;
    const hostSum = sha256(await readFile(join(g.share.path, 'from-guest.bin')));
    if (guestSum !== hostSum) throw new HylicsError('HYLICS_ERR_INTERNAL', `share mismatch: guest wrote ${guestSum}, host read ${hostSum}`);
    done(`4 MiB, sha256 ${hostSum.slice(0, 16)}… on both sides`);

    step('the host writes into the share, the guest reads it');
    const note = Buffer.from(`written by the host at ${new Date().toISOString()}\n`);
    await writeFile(join(g.share.path, 'from-host.txt'), note);
    const r = await exec(['sha256sum', '/mnt/hylics/from-host.txt']);
    if (r.stdout.split(/\s+/)[0] !== sha256(note)) throw new HylicsError('HYLICS_ERR_INTERNAL', 'the guest read something else than the host wrote');
    done('same bytes on both sides');
    summary.shareRoundTrip = 'ok';

    step(`compression in the guest under track() (${o.dataSize} of data, pigz)`);
    const c = await exec([NODE_BIN, ...entryArgv('guest/demo-task'), 'compress', '--share', GUEST_SHARE_DIR, '--size', o.dataSize], 600_000);
    const comp = JSON.parse(c.stdout.trim().split('\n').pop()!) as { input: string; output: string; inBytes: number; outBytes: number; ms: number; sha256: string };
    done(`${formatSize(comp.inBytes)} -> ${formatSize(comp.outBytes)} in ${(comp.ms / 1000).toFixed(2)} s`);
    summary.compression = comp;

    step('delivery of the compressed file: offloaded to a host module, and from inside the guest');
    const delivery: Record<string, unknown> = {};
    try {
      const mod = await apiRequest<{ id: string; urls?: string[] }>(stateDir, 'POST', `/v1/guests/${GUEST}/modules`, { kind: 'http', root: '/', port: 8080 });
      const got = await retry(() => fetchDigest(`http://${g.address}:8080/${comp.output}`), 10_000, 'module did not answer');
      if (got.sha256 !== comp.sha256) throw new HylicsError('HYLICS_ERR_INTERNAL', 'module delivered different bytes');
      delivery.offloaded = { bytes: got.bytes, seconds: got.seconds, mbPerSecond: got.bytes / got.seconds / 1e6 };
      await apiRequest(stateDir, 'DELETE', `/v1/guests/${GUEST}/modules/${mod.id}`);
    } catch (e) {
      delivery.offloaded = { error: e instanceof HylicsError ? `${e.code}: ${e.message}` : String(e) };
    }
    // In-guest delivery: the guest serves one request itself (tracked as task "deliver").
    const serving = exec([NODE_BIN, ...entryArgv('guest/demo-task'), 'serve', '--share', GUEST_SHARE_DIR, '--file', comp.output, '--port', '8081'], 120_000);
    serving.catch(() => undefined); // observed below; a failure must not become an unhandled rejection meanwhile
    const got = await Promise.race([
      retry(() => fetchDigest(`http://${g.address}:8081/${comp.output}`), 60_000, 'the guest server did not answer'),
      // only a failing server ends the wait early: a server that served us may finish before our read does
      serving.then(() => new Promise<never>(() => undefined)),
    ]);
    await serving;
    if (got.sha256 !== comp.sha256) throw new HylicsError('HYLICS_ERR_INTERNAL', 'the guest delivered different bytes');
    delivery.inGuest = { bytes: got.bytes, seconds: got.seconds, mbPerSecond: got.bytes / got.seconds / 1e6 };
    summary.delivery = delivery;
    const off = delivery.offloaded as { mbPerSecond?: number; error?: string };
    done(`in guest ${(got.bytes / got.seconds / 1e6).toFixed(1)} MB/s` + (off.mbPerSecond ? `, offloaded ${off.mbPerSecond.toFixed(1)} MB/s` : `, offload unavailable (${off.error})`));

    step('what the host profiler saw');
    const view = await apiRequest<GuestView>(stateDir, 'GET', `/v1/guests/${GUEST}`);
    summary.tasks = view.tasks;
    summary.share = view.share;
    done(view.tasks.map((t) => `${t.name} ${t.count}x mean ${t.meanMs.toFixed(0)} ms`).join(', '));

    if (o.json) printJson(summary);
    else {
      process.stdout.write('\nHylics demo summary\n');
      process.stdout.write(`  guest ${GUEST} (${o.driver}) at ${g.address}, share ${formatSize(view.share.sizeBytes)} (${formatSize(view.share.usedBytes)} used)\n`);
      process.stdout.write('  share: guest->host and host->guest files identical (sha256)\n');
      process.stdout.write(`  compression: ${formatSize(comp.inBytes)} -> ${formatSize(comp.outBytes)} in ${(comp.ms / 1000).toFixed(2)} s\n`);
      for (const [k, v] of Object.entries(delivery)) {
        const d = v as { mbPerSecond?: number; bytes?: number; error?: string };
        process.stdout.write(`  delivery ${k}: ${d.mbPerSecond !== undefined ? `${formatSize(d.bytes!)} at ${d.mbPerSecond.toFixed(1)} MB/s` : d.error}\n`);
      }
      for (const t of view.tasks) process.stdout.write(`  task ${t.name}: ${t.count} run(s), mean ${t.meanMs.toFixed(1)} ms, p95 ${t.p95Ms.toFixed(1)} ms (reported through the control channel)\n`);
    }
    if (o.keep) {
      process.stdout.write(`\nkept running: hylics guest show ${GUEST} --state-dir ${stateDir}\n`);
      daemon.unref();
      return;
    }
  } finally {
    if (!o.keep) {
      process.stderr.write('cleaning up\n');
      if (guestCreated) {
        await apiRequest(stateDir, 'DELETE', `/v1/guests/${GUEST}`).then(() => { guestRemoved = true; }, (e) => process.stderr.write(`  guest removal failed: ${String(e)}\n`));
      }
      if (daemon && daemon.exitCode === null) {
        const gone = new Promise((r) => daemon!.once('exit', r));
        daemon.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
        if (daemon.exitCode === null) daemon.kill('SIGKILL');
      }
      // Never rm -r over a share that is still mounted: its data would go with it.
      if (!guestCreated || guestRemoved) await rm(stateDir, { recursive: true, force: true }).catch(() => undefined);
      else process.stderr.write(`  left ${stateDir} in place for inspection\n`);
    }
  }
}
