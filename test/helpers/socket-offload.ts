// Shared by the socket offload end-to-end tests (docs/offload-socket.md), sandbox and microVM guests alike: why a
// test cannot run here, the example file server started in a guest, waiting for it from a client, what a handoff
// may leave behind on the host (steering flows, sockets on the guest's address), and the RSTs in a capture.
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { run } from '../../src/os/exec.js';
import { listSteerFlows } from '../../src/os/nft-steer.js';
import { processCmdline, signal } from '../../src/os/proc.js';
import { NODE_BIN, entryArgv } from '../../src/os/self.js';
import { tcpRepairAvailable } from '../../src/os/tcp-repair.js';
import { daemonTag } from '../../src/host/wiring.js';
import type { NsExecResult } from './net-probe.js';
import { has } from './proc.js';

export { has } from './proc.js';

/**
 * Why the socket offload e2e tests cannot run here, or false. `more`: further checks, in order, each a test (run
 * only when the ones before passed) and the reason to give when it fails.
 */
export function socketOffloadSkip(...more: Array<[() => boolean, string]>): string | false {
  if (process.getuid?.() !== 0) return 'needs root (daemon, namespaces, nftables, TCP_REPAIR)';
  if (!has('nft')) return 'needs nft (apt-get install nftables)';
  if (!has('curl')) return 'needs curl';
  for (const [ok, why] of more) if (!ok()) return why;
  const repair = tcpRepairAvailable();
  return repair.ok ? false : `native addon: ${repair.reason}`;
}

/**
 * A shell line for `guest exec ... sh -c`: the example file server in the background, serving the share on
 * `port`, its output to /run/hylics/LOG in the guest. `prefix` goes before the command (env, capsh).
 */
export function fileServerLine(port: number, log: string, opts: { prefix?: string; offload?: 'socket' | 'none' } = {}): string {
  const cli = [NODE_BIN, ...entryArgv('cli/main')].join(' ');
  return `${opts.prefix ?? ''}${cli} example file-server --root /mnt/hylics --port ${port} --offload ${opts.offload ?? 'socket'} > /run/hylics/${log} 2>&1 &`;
}

/**
 * Wait until `url` answers a GET from `exec` (a client namespace's, or the host's): `tries` attempts `pauseMs`
 * apart, then fail with `why()` (the server's log) in the message; at once when `signal` aborts (the test timed out
 * and its cleanup ran). A request is killed after `timeoutMs` (default 10 s): where the server's first answer can
 * take longer, give more, or the killed request is a client gone mid-send (a fallback, an error in the server's log).
 */
export async function waitForHttp(
  exec: (cmd: string, args: string[], timeoutMs?: number) => Promise<NsExecResult>,
  url: string,
  opts: { tries: number; pauseMs: number; why?: () => Promise<string>; signal?: AbortSignal; timeoutMs?: number },
): Promise<void> {
  for (let i = 0; ; i++) {
    opts.signal?.throwIfAborted();
    const r = await exec('curl', ['-sf', '-o', '/dev/null', url], opts.timeoutMs ?? 10_000);
    if (r.code === 0) return;
    if (i >= opts.tries) throw new Error(`${url} did not come up: ${r.stderr}\n${(await opts.why?.()) ?? ''}`);
    await new Promise((res) => setTimeout(res, opts.pauseMs));
  }
}

export interface LeftOver {
  flows: Awaited<ReturnType<typeof listSteerFlows>>;
  /** Host sockets on the guest's address (TIME-WAIT aside), `ss -tanp` lines: with `users:(` a process's, else
   *  a kernel orphan. */
  socks: string[];
}

/** What handoffs of guest `g` (daemon state dir `dir`, guest address `addr`) left on the host right now. */
export async function leftOver(g: string, dir: string, addr: string): Promise<LeftOver> {
  return {
    flows: await listSteerFlows(g, daemonTag(dir)),
    socks: (await run('ss', ['-tanp', 'src', addr])).stdout.trim().split('\n').slice(1).filter((l) => !/TIME-WAIT/.test(l)),
  };
}

/** Poll `leftOver` until nothing is left or `ms` have passed; the last answer. */
export async function waitLeftOver(g: string, dir: string, addr: string, ms: number): Promise<LeftOver> {
  const until = Date.now() + ms;
  let left = await leftOver(g, dir, addr);
  const flows = (): number => Object.values(left.flows).reduce((n, set) => n + set.length, 0);
  while (flows() + left.socks.length > 0 && Date.now() < until) {
    await new Promise((res) => setTimeout(res, 500));
    left = await leftOver(g, dir, addr);
  }
  return left;
}

/**
 * The RSTs from `addr` in a `ClientNetns.captureCloses` file: to a client port that had not closed (`seen`: the
 * client could see it) and to one that had already sent its FIN or RST (`afterClose`: its program is gone).
 */
export async function rstsInCapture(file: string, addr: string): Promise<{ seen: string[]; afterClose: string[] }> {
  const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n');
  const closed = new Set<string>();
  const seen: string[] = [];
  const afterClose: string[] = [];
  for (const l of lines) {
    const m = / IP ([\d.]+)\.(\d+) > ([\d.]+)\.(\d+): Flags \[([^\]]*)\]/.exec(l);
    if (!m) continue;
    const [, src, sport, , dport, flags] = m;
    if (src !== addr && /[FR]/.test(flags!)) closed.add(sport!);
    if (src === addr && flags!.includes('R')) (closed.has(dport!) ? afterClose : seen).push(l);
  }
  return { seen, afterClose };
}

/**
 * SIGKILL every process whose command line names `marker` or a path under it (a test's own unique state dir: its
 * daemon, and the QEMU and virtiofsd that daemon started detached, which outlive it). The pids it killed.
 */
export async function killProcessesOf(marker: string): Promise<number[]> {
  const killed: number[] = [];
  for (const e of readdirSync('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const cmd = `${(await processCmdline(pid)) ?? ''} `;
    if ((cmd.includes(`${marker}/`) || cmd.includes(`${marker} `)) && signal(pid, 'SIGKILL')) killed.push(pid);
  }
  return killed;
}
