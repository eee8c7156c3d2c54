// Running host commands (ip, mount, umount, nsenter ...) with errors that say what failed and why.
import { spawn } from 'node:child_process';
import { HylicsError, type ErrorCode } from '../core/errors/index.js';
import { codeForErrno } from '../core/errors/errno.js';

/** How long a command may run by default before it is killed (RunOptions.timeoutMs). */
export const DEFAULT_RUN_TIMEOUT_MS = 30_000;

export interface RunOptions {
  /** Written to the command's stdin. */
  input?: string | Buffer;
  /** Kill the command (SIGKILL) after this long; HYLICS_ERR_TIMEOUT. Default DEFAULT_RUN_TIMEOUT_MS; 0: no limit
   * (image builds). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Which Debian package brings a binary, for HYLICS_ERR_MISSING_DEPENDENCY messages. */
const PACKAGE_OF: Record<string, string> = {
  ip: 'iproute2', mount: 'util-linux', umount: 'util-linux', nsenter: 'util-linux', unshare: 'util-linux',
  findmnt: 'util-linux', flock: 'util-linux', setsid: 'util-linux', sysctl: 'procps', sh: 'dash', awk: 'mawk', nft: 'nftables',
};

function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/**
 * A program that could not be started, as a registry error (the errno table's `spawn` rule: ENOENT is a missing
 * dependency, naming its Debian package; anything else `otherwise`, by default HYLICS_ERR_OS_COMMAND_FAILED).
 */
export function spawnError(
  e: NodeJS.ErrnoException,
  cmd: string,
  args: readonly string[],
  otherwise?: ErrorCode,
): HylicsError {
  const code = codeForErrno('spawn', e.code, otherwise);
  if (code === 'HYLICS_ERR_MISSING_DEPENDENCY') {
    const base = cmd.split('/').pop()!;
    const pkg = PACKAGE_OF[base];
    const hint = pkg ? ` (install the Debian package ${pkg})` : '';
    return new HylicsError(code, `${base} not found${hint}`, { command: cmd, package: pkg });
  }
  return new HylicsError(
    code,
    `${commandLine(cmd, args)}: ${e.message}`,
    { command: cmd, args: [...args] },
    { cause: e },
  );
}

/** Run a command to completion; never throws for a non-zero exit (see `run` for that). */
export function runRaw(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env, ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const limit = opts.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
    const timer = limit > 0 ? setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, limit) : undefined;
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      reject(spawnError(e, cmd, args));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const res = {
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      };
      if (timedOut) {
        reject(new HylicsError('HYLICS_ERR_TIMEOUT', `${commandLine(cmd, args)} did not finish within ${limit} ms`, { command: cmd, args: [...args] }));
      } else resolve(res);
    });
    child.stdin.on('error', () => { /* command closed stdin early: its exit status tells */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** Run a command; a non-zero exit throws HYLICS_ERR_OS_COMMAND_FAILED with its stderr in message and details. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runRaw(cmd, args, opts);
  if (r.code !== 0) throw commandFailed(cmd, args, r);
  return r;
}

export function commandFailed(cmd: string, args: readonly string[], r: RunResult): HylicsError {
  const stderr = r.stderr.trim();
  return new HylicsError('HYLICS_ERR_OS_COMMAND_FAILED', `${commandLine(cmd, args)} failed (exit ${r.code})${stderr ? `: ${stderr}` : ''}`,
    { command: cmd, args: [...args], exitCode: r.code, stderr: stderr.slice(0, 2000) });
}

/** True when this process may do mounts, namespaces and cgroups (root). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function requireRoot(what: string): void {
  if (!isRoot()) throw new HylicsError('HYLICS_ERR_NOT_ROOT', `${what} needs root`, { what });
}
