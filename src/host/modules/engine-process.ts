// The process side every module engine shares (nginx: engine.ts, lighttpd: lighttpd-engine.ts): spawn the
// namespace launcher under a parent-death signal, keep a tail of its stderr and log a few lines a second, report an
// unexpected exit, stop it (the server's main process first, then the launcher), ask its control socket over HTTP,
// and wait until it answers. What differs per server (launch script, control paths, error lines) stays in its file.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { HylicsError } from '../../core/errors/index.js';

/** How long an engine may take to start or reload before we call it failed. */
export const ENGINE_READY_MS = 10_000;
/** Between two questions to a starting engine's control socket. */
const POLL_MS = 20;
/** Fast shutdown first; a main process that has not exited after this long is killed. */
const STOP_GRACE_MS = 2000;
/** Kept from the engine's stderr for error messages. */
const STDERR_TAIL = 4096;
/** Lines of the engine's stderr logged per second at most (a crash loop must not flood the daemon's log). */
const LOG_LINES_PER_S = 5;
/** A control-socket request that has not answered after this long fails. */
const CTL_TIMEOUT_MS = 2000;
/** Size of the tmpfs that is the root of an engine's mount namespace (directories, symlinks, scratch). */
export const NS_ROOT_SIZE = '4m';

/** The first executable of `candidates` (an engine's binary from its Debian package), or undefined. */
export function findExecutable(candidates: readonly string[]): string | undefined {
  for (const p of candidates) {
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}

export interface EngineDirs { root: string; conf: string; log: string; gate: string }

/** An engine's run directory parts: root/ (mount point), conf/, log/ (access logs, control socket), gate/. */
export function engineDirs(runDir: string): EngineDirs {
  return { root: join(runDir, 'root'), conf: join(runDir, 'conf'), log: join(runDir, 'log'), gate: join(runDir, 'gate') };
}

/** The run directory, root's alone (0700: nothing unprivileged reaches it by path), with root/ and conf/ in it. */
export function makeRunDir(runDir: string): EngineDirs {
  const dirs = engineDirs(runDir);
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  chmodSync(runDir, 0o700);
  for (const d of [dirs.root, dirs.conf]) mkdirSync(d, { recursive: true, mode: 0o755 });
  return dirs;
}

/** Host pids of the children of `pid` (its main thread's), [] when it is gone. */
export function childrenOf(pid: number | undefined): number[] {
  if (!pid) return [];
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch { return []; }
}

export interface EngineProcessOptions {
  guest: string;
  /** Control socket path on the host (in the engine's log directory). */
  ctlSocket: string;
  log: (msg: string) => void;
  onExit: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export class EngineProcess {
  private child: ChildProcess | null = null;
  private tail = '';
  private stopping = false;
  private logWindow = { start: 0, n: 0 };
  private exited = false;

  constructor(private readonly o: EngineProcessOptions) {}

  get running(): boolean { return this.child !== null; }
  get pid(): number | undefined { return this.child?.pid; }
  /** The engine's stderr lately (for error messages). */
  get stderrTail(): string { return this.tail; }
  clearStderr(): void { this.tail = ''; }
  /** True once the launcher spawned last has exited. */
  get dead(): boolean { return this.exited || this.child === null; }

  /**
   * Spawn the launcher script (`sh -c script`) in new mount + PID namespaces; setpriv --pdeathsig: unshare itself is
   * killed when the daemon dies (it ignores SIGTERM while it waits), --kill-child takes the namespace with it.
   * `fds` become the child's fds 3, 4, ... (the share or the module roots, opened by the daemon).
   */
  spawn(script: string, args: string[], fds: Array<number | 'ignore'>): void {
    if (this.child) throw new HylicsError('HYLICS_ERR_MODULE_WORKER', `engine of ${this.o.guest} already runs`);
    this.stopping = false;
    this.exited = false;
    this.tail = '';
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', '--mount', '--propagation', 'private', '--pid',
      '--fork', '--kill-child', '--', '/bin/sh', '-c', script, 'hylics-engine', ...args], {
      cwd: '/', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: ['ignore', 'ignore', 'pipe', ...fds],
    });
    this.child = child;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      this.tail = (this.tail + d).slice(-STDERR_TAIL);
      for (const line of d.split('\n').filter(Boolean)) this.logLine(line);
    });
    child.once('exit', (code, signal) => {
      this.exited = true;
      if (this.child === child) this.child = null;
      if (!this.stopping) this.o.onExit(code, signal);
    });
    child.once('error', () => { /* reported through exit */ });
  }

  /** Stop: SIGTERM to the server's main process (fast shutdown: transfers in flight are cut), then the namespace. */
  async stop(mainPid: number | undefined): Promise<void> {
    const child = this.child;
    this.stopping = true;
    if (!child) return;
    if (child.exitCode !== null || child.signalCode !== null) { this.child = null; return; }
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      try { if (mainPid) process.kill(mainPid, 'SIGTERM'); else child.kill('SIGKILL'); } catch { child.kill('SIGKILL'); }
      setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS).unref();
    });
    this.child = null;
  }

  /** GET `path` on the engine's control socket; the body of a 200, else a rejection. */
  ctl(path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.o.ctlSocket, path, timeout: CTL_TIMEOUT_MS }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { body += d; });
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`))));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * Poll until `ready()` (a control-socket question) is true; when the engine dies or ENGINE_READY_MS pass, throw
   * what `failure` makes of it (the caller knows its server's error lines).
   */
  async waitReady(ready: () => Promise<boolean>, failure: (dead: boolean) => HylicsError): Promise<void> {
    const end = Date.now() + ENGINE_READY_MS;
    while (Date.now() < end) {
      if (this.dead) break;
      try { if (await ready()) return; } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    throw failure(this.dead);
  }

  private logLine(line: string): void {
    const now = Date.now();
    if (now - this.logWindow.start > 1000) this.logWindow = { start: now, n: 0 };
    if (++this.logWindow.n <= LOG_LINES_PER_S) this.o.log(`module engine of ${this.o.guest}: ${line}`);
  }
}
