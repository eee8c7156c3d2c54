// A benchmark's own hylicsd: a temporary state dir, the daemon, the guests it creates, the CLI bound to that
// state dir, and one cleanup (guests removed, daemon stopped, state dir deleted) that also runs on SIGINT/SIGTERM,
// at any point: while the daemon starts (it is stopped), while a guest is being created (that create is waited
// for, then the guest removed); once cleanup began, the session starts nothing new (cli() throws).
import type { ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { hylics, startDaemon, stopDaemon, tempStateDir } from '../../test/helpers/cli.js';

export interface BenchSession {
  dir: string;
  /** The daemon's process (after start()). */
  daemon(): ChildProcess;
  start(): Promise<void>;
  /** `hylics VERB SUB ... --state-dir DIR ...`: throws on a non-zero exit; `json` is the parsed stdout, if any. */
  cli(args: string[], timeoutMs?: number): Promise<{ stdout: string; json: unknown }>;
  /** Create a guest (removed again by cleanup): `hylics guest create NAME ARGS --json`. */
  createGuest<T>(name: string, args: string[]): Promise<T>;
  /** Remove a guest now (cleanup skips it). */
  removeGuest(name: string): Promise<void>;
  /** `sh -c SCRIPT` inside a guest. */
  gexec(guest: string, sh: string, timeoutMs?: number): Promise<{ stdout: string; json: unknown }>;
  /** Run once at the end (and on a signal); extra waits (e.g. for a server in a guest) go in `afterStop`. */
  cleanup(): Promise<void>;
  afterStop: (() => Promise<unknown>)[];
  /** True once cleanup has begun (errors of things it ends are expected then; start nothing new that cleanup would
   *  not undo: cli() refuses). */
  closing(): boolean;
}

/** A benchmark daemon's log level: an operator's (info); a debug line per handoff is ~5 % of hylicsd's CPU. */
export const BENCH_DAEMON_LOG_LEVEL = 'info';

/**
 * HYLICS_BENCH_DAEMON_NODE_ARGS: node's own flags for the bench's hylicsd, split at spaces (e.g. `--perf-basic-prof`
 * for `perf record -g -p <hylicsd>`, `--trace-deopt`; the daemon's output goes to hylicsd.log in its state dir).
 */
export function daemonNodeArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.HYLICS_BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
}

export async function benchSession(
  prefix: string, log: (m: string) => void, opts: { logLevel?: string; daemonArgs?: string[] } = {},
): Promise<BenchSession> {
  const daemonArgs = ['--log-level', opts.logLevel ?? BENCH_DAEMON_LOG_LEVEL, ...(opts.daemonArgs ?? [])];
  const nodeArgs = daemonNodeArgs();
  const dir = await tempStateDir(prefix);
  let daemon: ChildProcess | undefined;
  const guests: string[] = [];
  /** Guest creates under way: cleanup waits for them (a guest it did not see would be left running). */
  const creating = new Set<Promise<unknown>>();
  const afterStop: (() => Promise<unknown>)[] = [];
  let cleaning: Promise<void> | undefined;
  const removeAll = async (): Promise<string[]> => {
    await Promise.allSettled([...creating]);
    const left: string[] = [];
    for (const g of [...guests]) {
      const r = await hylics(['guest', 'rm', g, '--state-dir', dir], { timeoutMs: 60_000 });
      if (r.code === 0 || /NOT_FOUND|no such|unknown guest/i.test(r.stderr)) guests.splice(guests.indexOf(g), 1);
      else left.push(`${g}: ${r.stderr.trim()}`);
    }
    return left;
  };
  const cleanup = (): Promise<void> => cleaning ??= (async () => {
    log('cleaning up (guest rm, daemon stop, state dir)');
    let left: string[] = [];
    if (daemon) {
      left = await removeAll();
      if (left.length > 0) {
        // a terminal's Ctrl-C reaches the daemon too (same process group): it exits and leaves its guests running
        // for the next daemon to re-adopt. Let it finish, start it again on the same state dir, remove them.
        const d = daemon;
        await new Promise<void>((resolve) => {
          if (d.exitCode !== null || d.signalCode !== null) { resolve(); return; }
          const timer = setTimeout(resolve, 10_000);
          d.once('exit', () => { clearTimeout(timer); resolve(); });
        });
        if (d.exitCode !== null || d.signalCode !== null) {
          log('the daemon has exited: starting it again to remove the guests');
          daemon = await startDaemon(dir, daemonArgs, { nodeArgs }).catch((e: Error) => { log(`daemon restart failed: ${e.message}`); return undefined; });
          if (daemon) left = await removeAll();
        }
      }
      if (daemon) await stopDaemon(daemon);
      daemon = undefined;
    }
    for (const b of afterStop) await b().catch(() => {});
    if (left.length > 0) {
      // never delete a state dir whose guests still run (their shares are mounted under it)
      for (const l of left) log(`guest rm ${l}`);
      log(`guests left running; their state stays in ${dir} (hylics daemon --state-dir ${dir} re-adopts them)`);
      return;
    }
    await rm(dir, { recursive: true, force: true });
  })();
  // `on`, not `once`: a Ctrl-C reaches this process directly and again relayed by npm/npx/tsx, and a second signal
  // without a handler would kill it in the middle of its cleanup
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(sig, () => {
      if (cleaning) { log(`${sig} again: still cleaning up`); return; }
      void cleanup().finally(() => process.exit(code));
    });
  }
  const cli = async (args: string[], timeoutMs = 120_000): Promise<{ stdout: string; json: unknown }> => {
    if (cleaning) throw new Error(`hylics ${args.slice(0, 2).join(' ')}: not started, the bench is cleaning up`);
    const r = await hylics([...args.slice(0, 2), '--state-dir', dir, ...args.slice(2)], { timeoutMs });
    if (r.code !== 0) throw new Error(`hylics ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()} ${r.stdout.trim()}`.slice(0, 2000));
    let json: unknown; try { json = JSON.parse(r.stdout); } catch { json = undefined; }
    return { stdout: r.stdout, json };
  };
  return {
    dir,
    daemon: () => { if (!daemon) throw new Error('daemon not started'); return daemon; },
    start: async () => {
      if (cleaning) throw new Error('daemon not started: the bench is cleaning up');
      log(`starting the daemon (state ${dir})`);
      // owned from its spawn on: cleanup stops a daemon that is still starting up
      await startDaemon(dir, daemonArgs, { onSpawn: (p) => { daemon = p; }, nodeArgs });
    },
    cli,
    createGuest: async <T>(name: string, args: string[]): Promise<T> => {
      if (cleaning) throw new Error(`guest ${name} not created: the bench is cleaning up`);
      guests.push(name);
      const p = cli(['guest', 'create', name, ...args, '--json']);
      creating.add(p);
      try { return (await p).json as T; } finally { creating.delete(p); }
    },
    removeGuest: async (name: string): Promise<void> => {
      await cli(['guest', 'rm', name], 60_000);
      guests.splice(guests.indexOf(name), 1);
    },
    gexec: (guest, sh, timeoutMs = 120_000) => cli(['guest', 'exec', guest, '--timeout', String(timeoutMs), '--', 'sh', '-c', sh], timeoutMs + 10_000),
    cleanup,
    afterStop,
    closing: () => cleaning !== undefined,
  };
}
