// The agent's `exec`: run a command without a shell, capture capped output, enforce a timeout, kill the whole
// process group (so `sh -c "sleep 100"` does not leave the sleep behind).
import { spawn } from 'node:child_process';
import { HylicsError } from '../core/errors/index.js';
import { EXEC_OUTPUT_CAP, type ExecParamsT, type ExecResultT } from '../core/protocol/index.js';

const KILL_GRACE_MS = 2000;

class Capture {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  add(b: Buffer): void {
    const room = this.cap - this.size;
    if (room <= 0) { if (b.length > 0) this.truncated = true; return; }
    if (b.length > room) { this.chunks.push(b.subarray(0, room)); this.size += room; this.truncated = true; return; }
    this.chunks.push(b);
    this.size += b.length;
  }
  base64(): string {
    return Buffer.concat(this.chunks).toString('base64');
  }
}

export function runExec(p: ExecParamsT, signal?: AbortSignal): Promise<ExecResultT> {
  const cap = Math.min(p.maxOutputBytes ?? EXEC_OUTPUT_CAP, EXEC_OUTPUT_CAP);
  const t0 = performance.now();
  return new Promise<ExecResultT>((resolve, reject) => {
    const [cmd, ...args] = p.argv as [string, ...string[]];
    const child = spawn(cmd, args, {
      cwd: p.cwd,
      env: p.env ? { ...process.env, ...p.env } : process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // own process group: the timeout kills it and everything it started
    });
    const out = new Capture(cap);
    const err = new Capture(cap);
    let timedOut = false;
    let spawned = false;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try { process.kill(-child.pid, sig); } catch { try { child.kill(sig); } catch { /* gone */ } }
    };
    const stop = () => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => { timedOut = true; stop(); }, p.timeoutMs);
    const onAbort = () => { timedOut = true; stop(); };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('spawn', () => { spawned = true; });
    child.stdout.on('data', (b: Buffer) => out.add(b));
    child.stderr.on('data', (b: Buffer) => err.add(b));
    child.stdin.on('error', () => {}); // EPIPE when the command does not read its input
    if (p.stdin) child.stdin.end(Buffer.from(p.stdin, 'base64')); else child.stdin.end();
    const cleanup = () => { clearTimeout(timer); clearTimeout(killTimer); signal?.removeEventListener('abort', onAbort); };
    child.once('error', (e: NodeJS.ErrnoException) => {
      if (spawned) return; // later errors are reported through 'close'
      cleanup();
      reject(new HylicsError('HYLICS_ERR_EXEC_SPAWN', `cannot run ${JSON.stringify(cmd)}: ${e.code ?? e.message}${p.cwd ? ` (cwd ${p.cwd})` : ''}`, { argv0: cmd, errno: e.code ?? '' }));
    });
    child.once('close', (code, sig) => {
      cleanup();
      if (!spawned) return;
      resolve({
        exitCode: code,
        signal: sig,
        encoding: 'base64',
        stdout: out.base64(),
        stderr: err.base64(),
        stdoutTruncated: out.truncated,
        stderrTruncated: err.truncated,
        timedOut,
        durationMs: Math.round((performance.now() - t0) * 1000) / 1000,
      });
    });
  });
}
