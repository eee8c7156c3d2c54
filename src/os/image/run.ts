// The microVM code's way to run a command (image build, QEMU, virtiofsd): the shared os/exec runner, plus the
// error code of the area on a non-zero exit and no time limit unless asked (image builds take a while).
import { HylicsError, type ErrorCode } from '../../core/errors/index.js';
import { runRaw, type RunResult } from '../exec.js';

export type { RunResult };

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
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runRaw(cmd, args, {
    timeoutMs: opts.timeoutMs ?? 0,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.env !== undefined ? { env: opts.env } : {}),
  });
  if (r.code !== 0 && !opts.allowFail) {
    throw new HylicsError(opts.code ?? 'HYLICS_ERR_INTERNAL', `${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim().slice(-800)}`, { command: cmd, exit: r.code });
  }
  return r;
}
