// `hylics task run NAME -- CMD ...` for apps in any language: run CMD as a task and report its start and end
// (response time, ok, the tier its input came from) to the host profiler through the agent, like track().
// CMD gets this process's stdin, stdout and stderr as they are (inherited descriptors: nothing is copied or
// buffered), its exit code (or its signal) becomes ours. Reports never fail or hold up CMD: the start report is
// sent while CMD already runs, and the end report gets at most REPORT_WAIT_MS after CMD ended; an absent agent
// (no socket) costs nothing and the reports are dropped.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { HylicsError } from '../core/errors/index.js';
import type { TaskEventT } from '../core/protocol/index.js';
import { sharedClient } from './lib.js';

/** The most a report may hold up this process after CMD ended (agent busy or hung); $HYLICS_REPORT_WAIT_MS
 * overrides it (an emulated microVM needs seconds to connect and say hello). */
export const REPORT_WAIT_MS = 1000;

export function reportWaitMs(): number {
  const v = Number(process.env.HYLICS_REPORT_WAIT_MS);
  return process.env.HYLICS_REPORT_WAIT_MS !== undefined && Number.isSafeInteger(v) && v >= 0 ? v : REPORT_WAIT_MS;
}
export const TASK_NAME_MAX = 128;
/** Shells' conventions for a command that cannot run. */
export const EXIT_NOT_FOUND = 127;
export const EXIT_NOT_EXECUTABLE = 126;

/** Signals passed on to CMD. SIGINT and SIGQUIT only when stdin is not a terminal: from a terminal they reach
 * the whole foreground process group, CMD included, and a second copy would be wrong. */
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGINT', 'SIGQUIT'];

export interface TaskRunOptions {
  /** Where the task's input came from, reported on the end event. */
  tier?: 'memory' | 'disk';
  /** Agent socket (default $HYLICS_AGENT_SOCKET or /run/hylics/agent.sock). */
  socket?: string;
}

export interface TaskRunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Reports the agent accepted (0..2). */
  reported: number;
}

export function checkTaskName(name: string): string {
  if (name.length === 0 || name.length > TASK_NAME_MAX) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `a task name must be 1..${TASK_NAME_MAX} characters, got ${JSON.stringify(name.slice(0, 40))}`, { name: name.slice(0, 200) });
  return name;
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    t.unref();
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e); });
  });
}

/** Hand events to the agent; false when it is absent or does not answer by `untilMs` (performance.now()). */
async function deliver(events: TaskEventT[], socket: string | undefined, untilMs?: number): Promise<boolean> {
  try {
    const bound = <T,>(p: Promise<T>): Promise<T> =>
      untilMs === undefined ? p : within(p, Math.max(1, untilMs - performance.now()));
    const c = await bound(sharedClient(socket));
    await bound(c.report(events));
    return true;
  } catch {
    return false;
  }
}

/** Run argv as task `name`; resolves when CMD has ended and the end report was handed over (or given up). */
export async function runTask(name: string, argv: string[], opts: TaskRunOptions = {}): Promise<TaskRunResult> {
  checkTaskName(name);
  if (argv.length === 0) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'no command given: hylics task run NAME -- CMD [ARGS...]');
  const id = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const startMs = Date.now();
  const t0 = performance.now();
  // while CMD runs, the start report has all the time it needs; it only bounds the wait after CMD ends
  const started = deliver([{ kind: 'start', name, id, startMs }], opts.socket);
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: 'inherit' });
  const forward = (sig: NodeJS.Signals) => (): void => { try { child.kill(sig); } catch { /* gone */ } };
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of FORWARDED) {
    if ((sig === 'SIGINT' || sig === 'SIGQUIT') && process.stdin.isTTY) { handlers.set(sig, () => {}); } else handlers.set(sig, forward(sig));
    process.on(sig, handlers.get(sig)!);
  }
  const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: string }>(
    (resolve) => {
      child.once('error', (e: NodeJS.ErrnoException) => {
        const code = e.code === 'ENOENT' ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
        resolve({ code, signal: null, error: `cannot run ${JSON.stringify(cmd)}: ${e.code ?? e.message}` });
      });
      child.once('exit', (code, signal) => resolve({ code, signal }));
    },
  );
  for (const [sig, h] of handlers) process.off(sig, h);
  const responseMs = performance.now() - t0;
  const ok = outcome.code === 0 && outcome.signal === null && outcome.error === undefined;
  const end: TaskEventT = { kind: 'end', name, id, startMs, endMs: startMs + responseMs, responseMs, ok };
  if (!ok) end.error = outcome.error ?? (outcome.signal ? `killed by ${outcome.signal}` : `exit ${outcome.code}`);
  if (opts.tier) end.tier = opts.tier;
  if (outcome.error) process.stderr.write(`hylics: ${outcome.error}\n`);
  const waitMs = reportWaitMs();
  const until = performance.now() + waitMs;
  const [a, b] = await Promise.all([
    within(started, Math.max(1, waitMs)).catch(() => false),
    deliver([end], opts.socket, until),
  ]);
  return { exitCode: outcome.code, signal: outcome.signal, reported: Number(a) + Number(b) };
}

/** End this process the way CMD ended: the same exit code, or the same signal (re-raised with its default
 * action), so a caller's shell sees what it would have seen without `hylics task run`. */
export function exitLike(r: Pick<TaskRunResult, 'exitCode' | 'signal'>): void {
  if (r.signal) {
    process.removeAllListeners(r.signal);
    try { process.kill(process.pid, r.signal); } catch { /* fall through */ }
    // a signal whose default action does not end the process (or that is ignored): the shell convention
    process.exitCode = 128 + ((constants.signals as Record<string, number>)[r.signal] ?? 0);
    return;
  }
  process.exitCode = r.exitCode ?? 1;
}
