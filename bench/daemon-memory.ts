// Daemon memory as guests are added: hylicsd's RSS (and each guest agent's) with 0..N sandbox guests, plus the
// time each guest creation took through the API. Usage: npx tsx bench/daemon-memory.ts [N=10]
// Writes bench/results/daemon-memory.json and .svg. Needs root.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hylics, startDaemon, stopDaemon, tempStateDir } from '../test/helpers/cli.js';
import { lineChart, renderSvg } from '../src/core/plot.js';
import { PACKAGE_ROOT } from '../src/os/self.js';
import type { GuestView } from '../src/core/api.js';

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

async function cgroupMemory(guest: GuestView): Promise<number | undefined> {
  const cg = guest.driverInfo.cgroup;
  if (typeof cg !== 'string') return undefined;
  for (const p of [`/sys/fs/cgroup/memory/${cg}/memory.usage_in_bytes`, `/sys/fs/cgroup/${cg}/memory.current`]) {
    try { return Number((await readFile(p, 'utf8')).trim()); } catch { /* other layout */ }
  }
  return undefined;
}

const n = Number(process.argv[2] ?? 10);
if (process.getuid?.() !== 0) { console.error('needs root'); process.exit(1); }
const dir = await tempStateDir('hylics-bench-mem-');
const daemon = await startDaemon(dir);
const rows: Array<{ guests: number; daemonRssMiB: number; createMs?: number; guestMemMiB?: number }> = [];
const names: string[] = [];
try {
  // let the daemon settle (JIT, first GC) before the baseline
  await new Promise((r) => setTimeout(r, 2000));
  rows.push({ guests: 0, daemonRssMiB: (await rssKiB(daemon.pid!)) / 1024 });
  for (let i = 1; i <= n; i++) {
    const name = `mem${i}`;
    const t0 = Date.now();
    const r = await hylics(['guest', 'create', name, '--state-dir', dir, '--json', '--share-size', '16M', '--cpus', '0.2', '--memory', '256M']);
    if (r.code !== 0) throw new Error(`create ${name}: ${r.stderr}`);
    const createMs = Date.now() - t0;
    names.push(name);
    const g = JSON.parse(r.stdout) as GuestView;
    const gm = await cgroupMemory(g);
    await new Promise((res) => setTimeout(res, 300));
    const row = {
      guests: i,
      daemonRssMiB: (await rssKiB(daemon.pid!)) / 1024,
      createMs,
      ...(gm !== undefined ? { guestMemMiB: gm / 1048576 } : {}),
    };
    rows.push(row);
    process.stderr.write(`[${i}/${n}] ${name}: created in ${createMs} ms; hylicsd RSS ${row.daemonRssMiB.toFixed(1)} MiB${gm !== undefined ? `, guest cgroup ${(gm / 1048576).toFixed(1)} MiB` : ''}\n`);
  }
} finally {
  for (const name of names) await hylics(['guest', 'rm', name, '--state-dir', dir]);
  await stopDaemon(daemon);
  await rm(dir, { recursive: true, force: true });
}
const base = rows[0]!.daemonRssMiB;
const last = rows[rows.length - 1]!;
const creates = rows.flatMap((r) => (r.createMs !== undefined ? [r.createMs] : [])).sort((a, b) => a - b);
const summary = {
  guests: n,
  daemonRssBaseMiB: base,
  daemonRssWithGuestsMiB: last.daemonRssMiB,
  daemonRssPerGuestMiB: (last.daemonRssMiB - base) / n,
  createP50Ms: creates[Math.floor(creates.length / 2)],
  createMaxMs: creates[creates.length - 1],
  note: 'RSS of hylicsd only; each sandbox guest also runs its own agent (node), counted in the guest cgroup (guestMemMiB)',
};
const out = join(PACKAGE_ROOT, 'bench', 'results');
await mkdir(out, { recursive: true });
await writeFile(join(out, 'daemon-memory.json'), JSON.stringify({ summary, rows }, null, 2));
await writeFile(join(out, 'daemon-memory.svg'), await renderSvg(lineChart('hylicsd memory vs number of sandbox guests', [
  ...rows.map((r) => ({ x: r.guests, y: r.daemonRssMiB, series: 'hylicsd RSS (MiB)' })),
  ...rows.flatMap((r) => (r.guestMemMiB !== undefined ? [{ x: r.guests, y: r.guestMemMiB, series: 'newest guest cgroup memory (MiB)' }] : [])),
], 'guests', 'MiB')));
console.log(JSON.stringify(summary, null, 2));
