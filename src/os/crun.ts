// crun (the OCI runtime, Debian package crun) driven for sandbox guests: create/start/state/kill/delete/exec with
// a per-daemon root dir (<state-dir>/crun) so containers are found again after a daemon restart. hylicsd keeps
// the guest's cgroup itself (--cgroup-manager=disabled; it moves the container's pid 1 into the cgroup before
// `crun start`), because crun 1.8 refuses hybrid cgroup hosts whose cgroup2 has a controller bound; on such a
// host each crun call runs in a private mount namespace where /sys/fs/cgroup/unified is unmounted (crun then sees
// a legacy host; it touches no cgroup either way).
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { HylicsError } from '../core/errors/index.js';
import { run, runRaw, type RunOptions, type RunResult } from './exec.js';

export const CRUN_BIN = 'crun';
const UNIFIED_CONTROLLERS = '/sys/fs/cgroup/unified/cgroup.controllers';

let hybridWithControllers: boolean | undefined;
/** A hybrid cgroup host whose cgroup2 hierarchy has controllers (crun 1.8 refuses those). */
export function hybridCgroupQuirk(): boolean {
  if (hybridWithControllers === undefined) {
    try { hybridWithControllers = readFileSync(UNIFIED_CONTROLLERS, 'utf8').trim() !== ''; } catch { hybridWithControllers = false; }
  }
  return hybridWithControllers;
}

const HIDE_UNIFIED = 'umount -l /sys/fs/cgroup/unified 2>/dev/null; exec "$@"';

/** argv of `crun --root ROOT --cgroup-manager=disabled ARGS...` (wrapped on a hybrid cgroup host). */
export function crunArgv(root: string, args: readonly string[]): string[] {
  const argv = [CRUN_BIN, '--root', root, '--cgroup-manager=disabled', ...args];
  return hybridCgroupQuirk() ? ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', HIDE_UNIFIED, 'crun', ...argv] : argv;
}

export function crunRaw(root: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
  const [cmd, ...rest] = crunArgv(root, args);
  return runRaw(cmd!, rest, opts);
}

export function crun(root: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
  const [cmd, ...rest] = crunArgv(root, args);
  return run(cmd!, rest, opts);
}

export interface ContainerState {
  id: string;
  /** created | running | stopped | paused */
  status: string;
  pid: number;
  bundle: string;
}

/** `crun state ID`; undefined when crun does not know the container. */
export async function containerState(root: string, id: string): Promise<ContainerState | undefined> {
  const r = await crunRaw(root, ['state', id]);
  if (r.code !== 0) return undefined;
  try {
    const s = JSON.parse(r.stdout) as ContainerState;
    return typeof s.pid === 'number' && typeof s.status === 'string' ? s : undefined;
  } catch { return undefined; }
}

/** Ids of the containers under `root` (`crun list`). */
export async function listContainers(root: string): Promise<string[]> {
  const r = await crunRaw(root, ['list', '-q']);
  return r.code === 0 ? r.stdout.split('\n').map((l) => l.trim()).filter(Boolean) : [];
}

/**
 * `crun create` with the container's stdio on `logFd` (the guest's log): the container's pid 1 is set up (its
 * namespaces exist) and waits for `crun start`. Resolves with crun's exit code; its errors go to the log.
 */
export function createContainer(
  root: string,
  id: string,
  bundle: string,
  logFd: number,
  timeoutMs: number,
): Promise<number> {
  const [cmd, ...rest] = crunArgv(root, ['create', '--bundle', bundle, id]);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, rest, { stdio: ['ignore', logFd, logFd], cwd: '/', detached: true });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e.code === 'ENOENT'
          ? new HylicsError('HYLICS_ERR_MISSING_DEPENDENCY', 'crun not found (install the Debian package crun)', {
              command: CRUN_BIN,
              package: 'crun',
            })
          : e,
      );
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code ?? 128);
    });
  });
}

/** Remove the container (killing what is left); missing is fine. */
export async function deleteContainer(root: string, id: string): Promise<void> {
  if (!(await containerState(root, id))) return;
  await crun(root, ['delete', '--force', id]);
}

/** argv that runs `cmd` in the running container as its root, with its capabilities, seccomp filter, env and
 * no_new_privs (which crun exec sets only when asked). */
export function execArgv(root: string, id: string, cmd: string[]): string[] {
  return crunArgv(root, ['exec', '--no-new-privs', id, ...cmd]);
}
