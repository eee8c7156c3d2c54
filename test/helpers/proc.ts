// Child processes for tests: run a program to its end with its output collected, and poll until something holds.
import { execFileSync, spawn } from 'node:child_process';
import { nativeAddon } from '../../src/os/native.js';

export interface ProcResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export interface ProcOptions {
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Written to stdin (then closed). */
  input?: string | Buffer;
  /** SIGKILL after this long (default: no limit). */
  timeoutMs?: number;
  uid?: number;
  gid?: number;
  /** Inherited by the child as its fds 3, 4, ... (an app's pass_fds). */
  fds?: number[];
}

/** Run `cmd args` to completion; resolves with its exit and output whatever the status, rejects if it cannot start. */
export function runCollect(cmd: string, args: string[], opts: ProcOptions = {}): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, {
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe', ...(opts.fds ?? [])],
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
    });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    p.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs) : undefined;
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    p.stdin!.end(opts.input ?? ''); // piped: fds 0-2 are 'pipe' above
  });
}

/** Poll `fn` every `everyMs` until it returns a value; throws `timed out waiting for WHAT` after timeoutMs. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** waitFor for a yes/no check: resolves once `check` is true. */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 250,
): Promise<void> {
  await waitFor(what, async () => ((await check()) ? true : undefined), timeoutMs, everyMs);
}

/** `bin` is on the PATH (a test's skip reason when not). */
export const has = (bin: string): boolean => {
  try {
    execFileSync('which', [bin], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** Why a test of the addon's netlink set changes cannot run here (root, nft, addon, netlink path), or false. */
export function netlinkSetSkip(): string | false {
  return process.getuid?.() !== 0 ? 'needs root (nftables)' : !has('nft') ? 'needs nft'
    : !nativeAddon().addon ? 'needs the native addon (netlink set changes)'
      : process.env.HYLICS_OFFLOAD_NETLINK === '0' ? 'set changes go through nft here (HYLICS_OFFLOAD_NETLINK=0)' : false;
}
