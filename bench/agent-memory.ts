// Memory of the guest agent beside QEMU's own guest agent (qemu-ga, Debian qemu-guest-agent), each idle after
// start-up: the bundled one-file agent (scripts/build-agent.mjs), the agent run from the build (dist/), and
// qemu-ga listening on a Unix socket. RSS and PSS (smaps_rollup: shared pages divided among their users).
//   npm run bench -- agent-memory [--idle-s 5] [--rounds 3]
// Writes bench/results/agent-memory.json and .svg.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChannelServer } from '../src/host/channel/index.js';
import { groupedBarChart, renderSvg } from '../src/core/plot.js';
import { NODE_BIN, PACKAGE_ROOT, entryArgv } from '../src/os/self.js';
import { arg, benchLog } from './lib/args.js';
import { resultPath } from './lib/results.js';

const KIB_PER_MIB = 1024;
const idleS = arg('idle-s', 5);
const rounds = arg('rounds', 3);
const log = benchLog('agent-memory');
const QEMU_GA = '/usr/sbin/qemu-ga';

async function memMiB(pid: number): Promise<{ rssMiB: number; pssMiB: number }> {
  const kib = (text: string, key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  return { rssMiB: kib(status, 'VmRSS') / KIB_PER_MIB, pssMiB: kib(rollup, 'Pss') / KIB_PER_MIB };
}

async function idleMemory(p: ChildProcess): Promise<{ rssMiB: number; pssMiB: number }> {
  await sleep(idleS * 1000);
  if (p.exitCode !== null) throw new Error(`process exited with ${p.exitCode}`);
  return memMiB(p.pid!);
}

const dir = await mkdtemp(join(tmpdir(), 'hylics-bench-agentmem-'));
const bundle = join(dir, 'hylics-agent.mjs');
const b = spawnSync(NODE_BIN, [join(PACKAGE_ROOT, 'scripts', 'build-agent.mjs'), bundle], { encoding: 'utf8' });
if (b.status !== 0) throw new Error(b.stderr);
const rows: Array<{ agent: string; round: number; rssMiB: number; pssMiB: number }> = [];
const server = new ChannelServer();
try {
  for (let round = 1; round <= rounds; round++) {
    for (const [label, argv] of [['hylics agent (bundle)', [bundle]], ['hylics agent (dist/)', entryArgv('guest/agent-main')]] as const) {
      const name = `m${round}${label.length}`;
      const chan = join(dir, `${name}.sock`);
      await server.addGuest(name, { mode: 'listen', path: chan });
      const p = spawn(NODE_BIN, [...argv, '--name', name, '--channel-unix', chan, '--app-socket', join(dir, `${name}-app.sock`), '--share', dir], { stdio: 'ignore' });
      try {
        await server.waitConnected(name, 60_000);
        rows.push({ agent: label, round, ...(await idleMemory(p)) });
      } finally { p.kill('SIGKILL'); await server.removeGuest(name); }
    }
    if (existsSync(QEMU_GA)) {
      const p = spawn(QEMU_GA, ['-m', 'unix-listen', '-p', join(dir, `qga${round}.sock`), '-t', dir, '-f', join(dir, `qga${round}.pid`)], { stdio: 'ignore' });
      try { rows.push({ agent: 'qemu-ga', round, ...(await idleMemory(p)) }); } finally { p.kill('SIGKILL'); }
    } else log('qemu-ga not installed (apt-get install qemu-guest-agent): only the Hylics agent measured');
    for (const r of rows.filter((x) => x.round === round)) log(`round ${round}: ${r.agent.padEnd(22)} RSS ${r.rssMiB.toFixed(1)} MiB, PSS ${r.pssMiB.toFixed(1)} MiB`);
  }
} finally {
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
const median = (xs: number[]): number => xs.sort((a, c) => a - c)[Math.floor(xs.length / 2)]!;
const agents = [...new Set(rows.map((r) => r.agent))];
const summary = Object.fromEntries(
  agents.map((a) => [
    a,
    {
      rssMiB: median(rows.filter((r) => r.agent === a).map((r) => r.rssMiB)),
      pssMiB: median(rows.filter((r) => r.agent === a).map((r) => r.pssMiB)),
    },
  ]),
);
const out = { summary, idleS, node: process.version, bundleBytes: b.stdout.trim(), rows };
await writeFile(resultPath('agent-memory.json'), JSON.stringify(out, null, 2) + '\n');
await writeFile(resultPath('agent-memory.svg'), await renderSvg(groupedBarChart(`guest agent memory, idle ${idleS} s after start (median of ${rounds})`,
  agents.flatMap((a) => [{ group: 'RSS', bar: a, value: summary[a]!.rssMiB }, { group: 'PSS', bar: a, value: summary[a]!.pssMiB }]), 'MiB')));
console.log(JSON.stringify(summary, null, 2));
