// Run the real `hylics` CLI (compiled or through tsx) and the real daemon as child processes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_BIN, entryArgv } from '../../src/os/self.js';
import { runCollect, type ProcOptions } from './proc.js';

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** A CLI call that has not ended by then is killed (a hung call fails its test instead of stalling it). */
const CLI_TIMEOUT_MS = 300_000;

export async function hylics(
  args: string[],
  opts: Pick<ProcOptions, 'env' | 'timeoutMs' | 'uid' | 'gid' | 'fds'> & { input?: string } = {},
): Promise<CliResult> {
  const { code, stdout, stderr } = await runCollect(NODE_BIN, [...entryArgv('cli/main'), ...args], {
    ...opts,
    timeoutMs: opts.timeoutMs ?? CLI_TIMEOUT_MS,
  });
  return { code, stdout, stderr };
}

/** The CLI bound to one daemon's state dir. */
export interface StateDirCli {
  /** `group command --state-dir DIR EXTRA... rest`: options go right after `group command`, since everything
   *  after `--` in `guest exec` belongs to the guest's command. */
  withOpts(args: string[], extra?: string[]): string[];
  /** Run `hylics ARGS` on the state dir. */
  cli(...args: string[]): Promise<CliResult>;
  /** Run `hylics ARGS --json` on the state dir; asserts exit 0 and parses stdout. */
  json<T>(...args: string[]): Promise<T>;
  /** `sh -c SCRIPT` in a guest (`guest exec`); asserts exit 0 and returns its stdout. */
  inGuest(guest: string, script: string): Promise<string>;
}

export function stateDirCli(dir: string): StateDirCli {
  const withOpts = (args: string[], extra: string[] = []): string[] =>
    [...args.slice(0, 2), '--state-dir', dir, ...extra, ...args.slice(2)];
  const cli = (...args: string[]): Promise<CliResult> => hylics(withOpts(args));
  return {
    withOpts,
    cli,
    inGuest: async (guest, script) => {
      const r = await cli('guest', 'exec', guest, '--', 'sh', '-c', script);
      assert.equal(r.code, 0, `${script.slice(0, 100)}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    json: async <T>(...args: string[]): Promise<T> => {
      const r = await hylics(withOpts(args, ['--json']));
      assert.equal(r.code, 0, `hylics ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
      return JSON.parse(r.stdout) as T;
    },
  };
}

/** Parse the `error HYLICS_ERR_X: ...` line of a failed CLI call. */
export function errorCode(r: CliResult): string | undefined {
  return /error (HYLICS_ERR_[A-Z0-9_]+)/.exec(r.stderr)?.[1];
}

export async function tempStateDir(prefix = 'hylics-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Start `hylics daemon` on a state dir (with extra daemon options); resolves once its API answers. */
export async function startDaemon(
  stateDir: string,
  extraArgs: string[] = [],
  /** nodeArgs: node's own flags for the daemon's process (benches: --perf-basic-prof, --trace-deopt). */
  opts: { onSpawn?: (p: ChildProcess) => void; nodeArgs?: string[] } = {},
): Promise<ChildProcess> {
  const log = await open(join(stateDir, 'hylicsd.log'), 'a');
  const argv = [...(opts.nodeArgs ?? []), ...entryArgv('cli/main'), 'daemon', '--state-dir', stateDir, '--log-level', 'debug', ...extraArgs];
  const p = spawn(NODE_BIN, argv, { stdio: ['ignore', log.fd, log.fd] });
  // the caller owns the process from here on (a signal while it starts up must be able to stop it)
  opts.onSpawn?.(p);
  await log.close();
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (p.exitCode !== null || p.signalCode !== null) throw new Error(`daemon exited with ${p.exitCode ?? p.signalCode}; see ${stateDir}/hylicsd.log`);
    const r = await hylics(['status', '--json', '--state-dir', stateDir]);
    if (r.code === 0) return p;
    if (Date.now() > deadline) { p.kill('SIGKILL'); throw new Error(`daemon did not come up: ${r.stderr}`); }
    await new Promise((res) => setTimeout(res, 250));
  }
}

export async function stopDaemon(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  await Promise.race([gone, new Promise((r) => setTimeout(r, 15_000))]);
  if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
}
