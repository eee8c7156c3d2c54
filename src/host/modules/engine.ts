// One guest's module engine: an nginx master (+ one worker) that hylicsd configures, starts, reloads and
// supervises. It runs unprivileged (setpriv to nobody, no capabilities, no_new_privs) in its own mount and PID
// namespaces: the mount namespace's root is a small tmpfs holding only that guest's share (read-only, nodev,
// nosuid, noexec), /usr (read-only, nginx and its libraries), its config, its log directory and the stream gate's
// sockets; every other file system of the host (other shares, /etc, /proc, /home, /run) is not mounted there.
// When the master dies the PID namespace dies with it (no orphaned worker keeps serving). When the daemon dies
// (even by SIGKILL) the engine dies too: unshare runs with a parent-death signal, unshare's --kill-child gives
// the master one, and setpriv sets it again after dropping to nobody (a uid change clears it). All of its
// processes run in the guest's module cgroup.
import { chmodSync, chownSync, mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HylicsError } from '../../core/errors/index.js';
import type { EngineConfig, ModuleEngine, StubStatus } from './engine-api.js';
import { childrenOf, engineDirs, EngineProcess, findExecutable, makeRunDir, NS_ROOT_SIZE, type EngineDirs } from './engine-process.js';
import { CTL_SOCKET, nginxConf } from './nginx-conf.js';

/** Where nginx is looked for (the Debian package `nginx`). */
export const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx'];

export function findNginx(): string | undefined {
  return findExecutable(NGINX_CANDIDATES);
}

// Runs as root in the new mount + PID namespaces ($$ is 1 there), builds the root, pivots into it and execs
// nginx as the unprivileged user. Positional: root conf log gate uid gid nginx [cgroup.procs files...];
// fd 4 = the share directory (opened O_NOFOLLOW by the daemon), bound by its fd, not by a path a guest could swap.
const LAUNCH = `set -eu
R=$1 CONF=$2 LOG=$3 GATE=$4 U=$5 G=$6 NGINX=$7
shift 7
for f in "$@"; do echo $$ > "$f"; done
mount -t tmpfs -o size=${NS_ROOT_SIZE},mode=0755,nosuid,nodev tmpfs "$R"
cd "$R"
mkdir usr share etc log gate tmp .old proc
mount --bind -o ro /usr usr
mount --bind -o ro,nosuid,nodev,noexec /proc/self/fd/4 share
mount --bind -o ro,nosuid,nodev,noexec "$CONF" etc
mount --bind -o nosuid,nodev,noexec "$LOG" log
mount --bind -o nosuid,nodev,noexec "$GATE" gate
mount -t proc -o nosuid,nodev,noexec proc proc
for d in lib lib32 lib64 libx32 bin sbin; do
  if [ -L /$d ]; then ln -s "$(readlink /$d)" $d
  elif [ -d /$d ]; then mkdir $d; mount --bind -o ro /$d $d; fi
done
chown "$U:$G" tmp
chmod 0700 tmp
exec 4<&-
pivot_root . .old
umount -l /.old
rmdir /.old
umount /proc
rmdir /proc
exec setpriv --reuid="$U" --regid="$G" --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs --pdeathsig KILL "$NGINX" -p /tmp/ -c /etc/nginx.conf -e stderr -g 'daemon off;'
`;

export interface EngineOptions {
  guest: string;
  nginx: string;
  /** Per-guest directory on the host: root/ (mount point), conf/, log/, gate/. */
  runDir: string;
  user: { uid: number; gid: number };
  /** cgroup.procs files the engine joins before anything else (empty: no cgroup). */
  procsFiles: string[];
  log: (msg: string) => void;
  onExit: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export type { StubStatus };

export function parseStubStatus(text: string): StubStatus {
  const n = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
  const m = /\s(\d+)\s+(\d+)\s+(\d+)\s/.exec(text);
  return {
    active: n(/Active connections:\s*(\d+)/), accepts: Number(m?.[1] ?? NaN), handled: Number(m?.[2] ?? NaN), requests: Number(m?.[3] ?? NaN),
    reading: n(/Reading:\s*(\d+)/), writing: n(/Writing:\s*(\d+)/), waiting: n(/Waiting:\s*(\d+)/),
  };
}

export class NginxEngine implements ModuleEngine {
  readonly kind = 'nginx' as const;
  private readonly proc: EngineProcess;
  /** The modules of the configuration written last. */
  private ids: string[] = [];

  constructor(private readonly o: EngineOptions) {
    const ctlSocket = join(this.dirs.log, CTL_SOCKET);
    this.proc = new EngineProcess({ guest: o.guest, ctlSocket, log: o.log, onExit: o.onExit });
  }

  get dirs(): EngineDirs { return engineDirs(this.o.runDir); }

  /**
   * Make the run directory, root's alone (0700; nothing unprivileged reaches it by path): conf/ read by nginx
   * through its bind mount; log/ and gate/ owned by the engine's user (the gate binds its sockets in gate/
   * through a directory fd it is given, so it needs no path into the daemon's state directory).
   */
  prepare(): void {
    const { log, gate } = makeRunDir(this.o.runDir);
    for (const d of [log, gate]) {
      mkdirSync(d, { recursive: true, mode: 0o700 });
      chownSync(d, this.o.user.uid, this.o.user.gid);
      chmodSync(d, 0o700);
    }
  }

  /** Write the configuration for this module set (read by the next start or reload). */
  configure(c: EngineConfig): void {
    this.ids = c.modules.map((m) => m.id);
    this.writeConf(nginxConf(c));
  }

  writeConf(text: string): void {
    const p = join(this.dirs.conf, 'nginx.conf');
    writeFileSync(`${p}.tmp`, text, { mode: 0o644 });
    renameSync(`${p}.tmp`, p);
  }

  get running(): boolean { return this.proc.running; }

  /** One master serves every module: all of them are down while it is. */
  down(): string[] { return this.proc.running ? [] : [...this.ids]; }

  modulePid(_id: string): number | undefined { return this.masterPid(); }

  /** Host pid of unshare (the process the daemon spawned). */
  get launcherPid(): number | undefined { return this.proc.pid; }

  /** Host pid of the nginx master (pid 1 of the engine's PID namespace). */
  masterPid(): number | undefined {
    return childrenOf(this.proc.pid)[0];
  }

  /** Start nginx with the config already written; resolves once it answers with `generation`. */
  async start(shareFd: number, generation: number): Promise<void> {
    if (this.proc.running) throw new HylicsError('HYLICS_ERR_MODULE_WORKER', `engine of ${this.o.guest} already runs`);
    const { root, conf, log, gate } = this.dirs;
    try { unlinkSync(join(log, CTL_SOCKET)); } catch { /* none left behind */ }
    this.proc.spawn(LAUNCH, [root, conf, log, gate, String(this.o.user.uid), String(this.o.user.gid), this.o.nginx,
      ...this.o.procsFiles], ['ignore', shareFd]);
    try {
      await this.waitGeneration(generation);
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Rewrite nothing: tell nginx to re-read its (already written) config; resolves once `generation` answers. */
  async reload(generation: number, _openShare?: () => number): Promise<void> {
    const pid = this.masterPid();
    if (!pid) throw new HylicsError('HYLICS_ERR_MODULE_WORKER', `engine of ${this.o.guest} is not running`);
    this.proc.clearStderr();
    process.kill(pid, 'SIGHUP');
    await this.waitGeneration(generation);
  }

  /** nginx reopens its logs on SIGUSR1: the access logs are rotated by renaming them. */
  readonly logRotation = 'rename' as const;

  /** Ask nginx to reopen its log files (after the access logs were renamed). */
  reopenLogs(): void {
    const pid = this.masterPid();
    if (pid) try { process.kill(pid, 'SIGUSR1'); } catch { /* gone: the supervisor restarts it */ }
  }

  /** Stop nginx (fast shutdown: transfers in flight are cut) and wait for the namespace to be gone. */
  async stop(): Promise<void> {
    await this.proc.stop(this.masterPid());
  }

  /** Remove the run directory (after stop). */
  removeDirs(): void {
    rmSync(this.o.runDir, { recursive: true, force: true });
  }

  /** nginx's stub_status (connections now, totals since start), through the control socket. */
  async status(): Promise<StubStatus> {
    return parseStubStatus(await this.proc.ctl('/status'));
  }

  private waitGeneration(generation: number): Promise<void> {
    return this.proc.waitReady(async () => Number((await this.proc.ctl('/generation')).trim()) === generation, (dead) => {
      const tail = this.proc.stderrTail;
      const emerg = /\[emerg\][^\n]*/.exec(tail)?.[0];
      const code = emerg && /Address already in use|bind\(\)/.test(emerg) ? 'HYLICS_ERR_MODULE_PORT_IN_USE' : 'HYLICS_ERR_MODULE_WORKER';
      return new HylicsError(code, `nginx for ${this.o.guest} did not ${dead ? 'stay up' : 'answer'} with configuration ${generation}${emerg ? `: ${emerg}` : ''}`,
        { guest: this.o.guest, stderr: tail.slice(-1024) });
    });
  }
}
