// One guest's module engine as lighttpd (daemon setting `module-engine: lighttpd`; nginx is engine.ts). The same
// launcher shape as nginx's: unshare'd mount + PID namespaces whose root is a small tmpfs holding /usr (lighttpd and
// its libraries), the config (+ a passwd/group naming the unprivileged user), the log directory and /jail/m/<id>,
// each module's root (opened by the daemon beneath the share without following symlinks, bound by its fd,
// read-only, nodev, nosuid, noexec). lighttpd starts as root there with no capability but setuid, setgid and
// sys_chroot (bounding set, no_new_privs), loads its modules, binds (the control socket at /log), chroots into /jail
// and drops to the user, then opens its access logs (/jail/log: the same directory, which the user can pass through
// but not list, each log write-only for it): whatever path or symlink a client or the guest tries, it resolves to
// a file of the guest's module roots or to nothing. A root shell stays pid 1 of the PID namespace (lighttpd's own
// uid change clears the parent-death signal; pid 1 keeps it): when the daemon dies, unshare dies, pid 1 gets
// SIGKILL and the kernel kills lighttpd with its namespace. Everything runs in the guest's module cgroup.
import { chmodSync, chownSync, closeSync, constants as fsc, openSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HylicsError } from '../../core/errors/index.js';
import { openDirBeneath } from '../../os/native.js';
import type { EngineConfig, ModuleEngine, StubStatus } from './engine-api.js';
import { childrenOf, engineDirs, EngineProcess, findExecutable, makeRunDir, NS_ROOT_SIZE, type EngineDirs } from './engine-process.js';
import { lighttpdConf, LT_CTL_SOCKET, LT_USER } from './lighttpd-conf.js';

export const LIGHTTPD_CANDIDATES = ['/usr/sbin/lighttpd', '/usr/bin/lighttpd'];

export function findLighttpd(): string | undefined {
  return findExecutable(LIGHTTPD_CANDIDATES);
}

// Positional: root conf log lighttpd "id..." [cgroup.procs files...]; fds 5, 6, ... = each module's root directory
// in that order (opened by the daemon beneath the share, no symlink on the way: openDirBeneath), bound at
// /jail/m/<id>. Not exec'd: this shell stays pid 1 of the namespace (see above) and exits with lighttpd's status.
const LAUNCH = `set -eu
R=$1 CONF=$2 LOG=$3 LIGHTTPD=$4 IDS=$5
shift 5
for f in "$@"; do echo $$ > "$f"; done
mount -t tmpfs -o size=${NS_ROOT_SIZE},mode=0755,nosuid,nodev tmpfs "$R"
cd "$R"
mkdir usr etc log jail jail/m jail/log jail/tmp .old proc dev
touch dev/null
mount --bind /dev/null dev/null
mount --bind -o ro /usr usr
fd=5
for id in $IDS; do
  mkdir jail/m/$id
  mount --bind -o ro,nosuid,nodev,noexec /proc/self/fd/$fd jail/m/$id
  fd=$((fd + 1))
done
mount --bind -o ro,nosuid,nodev,noexec "$CONF" etc
mount --bind -o nosuid,nodev,noexec "$LOG" log
mount --bind -o nosuid,nodev,noexec "$LOG" jail/log
mount -t proc -o nosuid,nodev,noexec proc proc
for d in lib lib32 lib64 libx32 bin sbin; do
  if [ -L /$d ]; then ln -s "$(readlink /$d)" $d
  elif [ -d /$d ]; then mkdir $d; mount --bind -o ro /$d $d; fi
done
pivot_root . .old
umount -l /.old
rmdir /.old
umount /proc
rmdir /proc
setpriv --inh-caps=-all --bounding-set=-all,+setuid,+setgid,+sys_chroot --no-new-privs "$LIGHTTPD" -D -f /etc/lighttpd.conf
`;

/** The hard limit of open files this process (and so the engine) has: lighttpd may not raise max-fds above it. */
function hardNofile(): number {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m && /^\d+$/.test(m[1]!) ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
}

/** mod_status `?auto`: BusyServers = connections open now (this request included), Total Accesses = requests. */
export function parseLighttpdStatus(text: string): StubStatus {
  const n = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
  return {
    active: n(/BusyServers:\s*(\d+)/), accepts: NaN, handled: NaN, requests: n(/Total Accesses:\s*(\d+)/),
    reading: NaN, writing: NaN, waiting: NaN,
  };
}

export interface LighttpdEngineOptions {
  guest: string;
  lighttpd: string;
  runDir: string;
  user: { uid: number; gid: number };
  procsFiles: string[];
  log: (msg: string) => void;
  onExit: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export class LighttpdEngine implements ModuleEngine {
  readonly kind = 'lighttpd' as const;
  readonly logRotation = 'truncate' as const;
  private readonly proc: EngineProcess;
  /** The modules of the configuration written last: their roots are bound into the jail at start. */
  private modules: Array<{ id: string; root: string }> = [];

  constructor(private readonly o: LighttpdEngineOptions) {
    const ctlSocket = join(this.dirs.log, LT_CTL_SOCKET);
    this.proc = new EngineProcess({ guest: o.guest, ctlSocket, log: o.log, onExit: o.onExit });
  }

  get dirs(): EngineDirs { return engineDirs(this.o.runDir); }

  /** The run directory, root's alone; log/ too (lighttpd opens its logs as root, before it drops to the user). */
  prepare(): void {
    const { log, gate } = makeRunDir(this.o.runDir);
    // log/: lighttpd opens its access logs after its chroot (at /jail/log) as the user: it may pass through the
    // directory but not list it or create anything there; each log is made here, the user's, write-only (configure)
    mkdirSync(log, { recursive: true, mode: 0o711 });
    chmodSync(log, 0o711);
    mkdirSync(gate, { recursive: true, mode: 0o700 });
    const { uid, gid } = this.o.user;
    this.write('passwd', `${LT_USER}:x:${uid}:${gid}::/nonexistent:/usr/sbin/nologin\n`);
    this.write('group', `${LT_USER}:x:${gid}:\n`);
    this.write('nsswitch.conf', 'passwd: files\ngroup: files\n');
  }

  configure(c: EngineConfig): void {
    this.modules = c.modules.map((m) => ({ id: m.id, root: m.root }));
    for (const m of c.modules) {
      // write-only for the user: a symlink in the share that won the race to /log/... would still not be readable
      const p = join(this.dirs.log, `${m.id}.access`);
      closeSync(openSync(p, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o200));
      chownSync(p, this.o.user.uid, this.o.user.gid);
      chmodSync(p, 0o200);
    }
    const max = Math.floor((hardNofile() - 64) / 2);
    this.write('lighttpd.conf', lighttpdConf({ modules: c.modules, limits: c.limits, maxFds: max * 2 + 64 }));
  }

  private write(name: string, text: string): void {
    const p = join(this.dirs.conf, name);
    writeFileSync(`${p}.tmp`, text, { mode: 0o644 });
    renameSync(`${p}.tmp`, p);
  }

  get running(): boolean { return this.proc.running; }

  /** Host pid of lighttpd (the child of pid 1 of the engine's PID namespace). */
  masterPid(): number | undefined {
    const init = childrenOf(this.proc.pid)[0];
    return childrenOf(init).find((p) => { try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'lighttpd'; } catch { return false; } });
  }

  async start(shareFd: number, _generation: number): Promise<void> {
    if (this.proc.running) throw new HylicsError('HYLICS_ERR_MODULE_WORKER', `engine of ${this.o.guest} already runs`);
    // each module's root, opened beneath the share without following a symlink (a guest swapping a directory of the
    // path for a symlink gets an error here, never a bind of something else)
    const roots: number[] = [];
    try {
      for (const m of this.modules) roots.push(openDirBeneath(shareFd, m.root === '' ? '.' : m.root).fd);
    } catch (e) {
      for (const fd of roots) closeSync(fd);
      throw new HylicsError('HYLICS_ERR_MODULE_ROOT', `a module root of ${this.o.guest} is not a directory inside the share: ${(e as Error).message}`, { guest: this.o.guest });
    }
    const { root, conf, log } = this.dirs;
    try { unlinkSync(join(log, LT_CTL_SOCKET)); } catch { /* none left behind */ }
    try {
      this.proc.spawn(LAUNCH, [root, conf, log, this.o.lighttpd, this.modules.map((m) => m.id).join(' '), ...this.o.procsFiles],
        ['ignore', 'ignore', ...roots]);
    } finally {
      for (const fd of roots) closeSync(fd); // the engine bound them; the daemon keeps none
    }
    try {
      await this.waitReady();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** lighttpd cannot re-read its config after its chroot: a new module set restarts it (transfers are cut). */
  async reload(generation: number, openShare: () => number): Promise<void> {
    await this.stop();
    const fd = openShare();
    try { await this.start(fd, generation); } finally { closeSync(fd) }
  }

  /** Nothing to do: the manager truncates lighttpd's access logs in place (logRotation). */
  reopenLogs(): void {}

  async stop(): Promise<void> {
    await this.proc.stop(this.masterPid());
  }

  removeDirs(): void {
    rmSync(this.o.runDir, { recursive: true, force: true });
  }

  async status(): Promise<StubStatus> {
    return parseLighttpdStatus(await this.proc.ctl('/status?auto'));
  }

  private waitReady(): Promise<void> {
    return this.proc.waitReady(async () => { await this.proc.ctl('/status?auto'); return true; }, (dead) => {
      const tail = this.proc.stderrTail;
      const err = /\(network\.c[^\n]*|can't bind[^\n]*|Address already in use[^\n]*/.exec(tail)?.[0];
      const code = err && /Address already in use|bind/.test(err) ? 'HYLICS_ERR_MODULE_PORT_IN_USE' : 'HYLICS_ERR_MODULE_WORKER';
      return new HylicsError(code, `lighttpd for ${this.o.guest} did not ${dead ? 'stay up' : 'answer'}${err ? `: ${err}` : ''}`,
        { guest: this.o.guest, stderr: tail.slice(-1024) });
    });
  }
}
