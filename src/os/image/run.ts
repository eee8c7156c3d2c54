// Small process helpers for the microVM code (image build, QEMU, virtiofsd). Kept local to the microvm area
// until a shared os/exec adapter exists; they only wrap child_process with errors that name the command.
import { spawn } from 'node:child_process';
import { HylicsError, type ErrorCode } from '../../core/errors/index.js';

export interface RunResult { stdout: string; stderr: string; code: number }

export interface RunOptions {
  cwd?: string;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  /** Error code when the command exits non-zero (default HYLICS_ERR_INTERNAL). */
  code?: ErrorCode;
  /** Resolve instead of throwing on a non-zero exit. */
  allowFail?: boolean;
  timeoutMs?: number;
}

/** Run a command to completion, capturing its output. ENOENT becomes HYLICS_ERR_MISSING_DEPENDENCY. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (e.code === 'ENOENT') reject(new HylicsError('HYLICS_ERR_MISSING_DEPENDENCY', `${cmd} is not installed`, { command: cmd }));
      else reject(new HylicsError(opts.code ?? 'HYLICS_ERR_INTERNAL', `${cmd}: ${e.message}`, { command: cmd }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const r = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code: code ?? (signal ? 128 : 1) };
      if (r.code !== 0 && !opts.allowFail) {
        reject(new HylicsError(opts.code ?? 'HYLICS_ERR_INTERNAL', `${cmd} ${args.join(' ')} failed (exit ${r.code}${signal ? `, ${signal}` : ''}): ${r.stderr.trim().slice(-800)}`, { command: cmd, exit: r.code }));
      } else resolve(r);
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}
