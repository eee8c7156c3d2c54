// One guest's module engine as lighttpd (daemon setting `module-engine: lighttpd`, or the default `auto` for a guest
// without a stream module; nginx is engine.ts): ONE lighttpd PROCESS PER MODULE, each with its own config (conf/<id>/),
// listen address, connection cap (server.max-connections), access log and control socket, all in the guest's module
// cgroup. Adding, removing or restarting a module starts or stops only its process: the guest's other modules keep
// their connections (lighttpd cannot re-read its config after its chroot, so one process for all would restart all).
// Each process has the same launcher shape as nginx's: unshare'd mount + PID namespaces whose root is a small tmpfs
// holding /usr (lighttpd and its libraries), the config (+ a passwd/group naming the unprivileged user), the log
// directory and /jail/m/<id>, the module's root (opened by the daemon beneath the share without following symlinks,
// bound by its fd, read-only, nodev, nosuid, noexec). lighttpd starts as root there with no capability but setuid,
// setgid and sys_chroot (bounding set, no_new_privs), loads its modules, binds (the control socket at /log), chroots
// into /jail and drops to the user, then opens its access logs (/jail/log: the same directory, which the user can pass
// through but not list, each log write-only for it): whatever path or symlink a client or the guest tries, it resolves
// to a file of the guest's module roots or to nothing. A root shell stays pid 1 of the PID namespace (lighttpd's own
// uid change clears the parent-death signal; pid 1 keeps it): when the daemon dies, unshare dies, pid 1 gets SIGKILL
// and the kernel kills lighttpd with its namespace. Everything runs in the guest's module cgroup.
import { chmodSync, chownSync, closeSync, constants as fsc, openSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HylicsError } from '../../core/errors/index.js';
import { openDirBeneath } from '../../os/native.js';
import type { EngineConfig, EngineExit, ModuleEngine, ModuleProcessReport, StubStatus } from './engine-api.js';
import { childrenOf, engineDirs, EngineProcess, findExecutable, makeRunDir, NS_ROOT_SIZE, type EngineDirs } from './engine-process.js';
import { lighttpdConf, ltCtlSocket, LT_USER } from './lighttpd-conf.js';
import type { EngineModule } from './nginx-conf.js';
import type { ModuleLimits } from './types.js';

export const LIGHTTPD_CANDIDATES = ['/usr/sbin/lighttpd', '/usr/bin/lighttpd'];

export function findLighttpd(): string | undefined {
  return findExecutable(LIGHTTPD_CANDIDATES);
}

// Positional: root conf log lighttpd id [cgroup.procs files...]; fd 3 = the module's root directory (opened by the
// daemon beneath the share, no symlink on the way: openDirBeneath), bound at /jail/m/<id>. Not exec'd: this shell
// stays pid 1 of the namespace (see above) and exits with lighttpd's status.
const LAUNCH = `set -eu
R=$1 CONF=$2 LOG=$3 LIGHTTPD=$4 ID=$5
shift 5
for f in "$@"; do echo $$ > "$f"; done
mount -t tmpfs -o size=${NS_ROOT_SIZE},mode=0755,nosuid,nodev tmpfs "$R"
cd "$R"
mkdir usr etc log jail jail/m jail/log jail/tmp .old proc dev
touch dev/null
mount --bind /dev/null dev/null
mount --bind -o ro /usr usr
mkdir jail/m/$ID
mount --bind -o ro,nosuid,nodev,noexec /proc/self/fd/3 jail/m/$ID
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
  /** An unexpected exit of one module's process (`module`: its id). */
  onExit: EngineExit;
}

/** One module's lighttpd: its process, and the configuration it runs (or ran last). */
interface ModuleProc {
  proc: EngineProcess;
  /** What it was started with (module and limits): a different one restarts it. */
  key: string;
}

export class LighttpdEngine implements ModuleEngine {
  readonly kind = 'lighttpd' as const;
  readonly logRotation = 'truncate' as const;
  /** The configuration written last, per module id (order kept: masterPid is the first module's). */
  private wanted = new Map<string, { m: EngineModule; key: string }>();
  /** The processes started, per module id (a process that died stays here, not running, until restarted). */
  private readonly procs = new Map<string, ModuleProc>();

  constructor(private readonly o: LighttpdEngineOptions) {}

  get dirs(): EngineDirs { return engineDirs(this.o.runDir); }

  /** The run directory, root's alone; log/ too (lighttpd opens its logs as root, before it drops to the user). */
  prepare(): void {
    const { log, gate } = makeRunDir(this.o.runDir);
    // log/: lighttpd opens its access logs after its chroot (at /jail/log) as the user: it may pass through the
    // directory but not list it or create anything there; each log is made here, the user's, write-only (configure)
    mkdirSync(log, { recursive: true, mode: 0o711 });
    chmodSync(log, 0o711);
    mkdirSync(gate, { recursive: true, mode: 0o700 });
  }

  /**
   * Write each module's access log, and the config directory (conf/<id>/: lighttpd.conf, passwd, group, nsswitch.conf)
   * of each module that (re)starts with it: one new, changed (key) or down. A running one's files are not rewritten.
   */
  configure(c: EngineConfig): void {
    const wanted = new Map<string, { m: EngineModule; key: string }>();
    const maxFds = Math.floor((hardNofile() - 64) / 2) * 2 + 64;
    for (const m of c.modules) {
      const key = moduleKey(m, c.limits);
      wanted.set(m.id, { m, key });
      // write-only for the user: a symlink in the share that won the race to /log/... would still not be readable
      const p = join(this.dirs.log, `${m.id}.access`);
      closeSync(openSync(p, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o200));
      chownSync(p, this.o.user.uid, this.o.user.gid);
      chmodSync(p, 0o200);
      // a running process keeps the files it read (at its start); they change only with a restart (reload, by key):
      // a module whose process runs with the same key keeps its conf/<id>/ untouched
      const running = this.procs.get(m.id);
      if (running?.key === key && running.proc.running) continue;
      const dir = this.confDir(m.id);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      const { uid, gid } = this.o.user;
      write(dir, 'passwd', `${LT_USER}:x:${uid}:${gid}::/nonexistent:/usr/sbin/nologin\n`);
      write(dir, 'group', `${LT_USER}:x:${gid}:\n`);
      write(dir, 'nsswitch.conf', 'passwd: files\ngroup: files\n');
      write(dir, 'lighttpd.conf', lighttpdConf({ modules: [m], limits: c.limits, maxFds, ctlSocket: ltCtlSocket(m.id) }));
    }
    this.wanted = wanted;
  }

  private confDir(id: string): string { return join(this.dirs.conf, id); }

  get running(): boolean { return [...this.procs.values()].some((p) => p.proc.running); }

  down(): string[] {
    return [...this.wanted.keys()].filter((id) => !this.procs.get(id)?.proc.running);
  }

  /** Host pid of the first module's lighttpd. */
  masterPid(): number | undefined {
    const first = this.wanted.keys().next();
    return first.done ? undefined : this.modulePid(first.value);
  }

  /** Host pid of module `id`'s lighttpd (the child of pid 1 of its PID namespace). */
  modulePid(id: string): number | undefined {
    return lighttpdPid(this.procs.get(id)?.proc);
  }

  /** Start the process of every module configured that does not run. */
  async start(shareFd: number, _generation: number): Promise<void> {
    await this.startDown(shareFd);
  }

  /**
   * Apply the configuration written: stop the processes of modules gone or changed, start those of modules new or
   * down. The other modules' processes (and their clients' connections) are not touched.
   */
  async reload(_generation: number, openShare: () => number): Promise<void> {
    for (const [id, p] of [...this.procs]) {
      const w = this.wanted.get(id);
      if (w && w.key === p.key) continue;
      await this.stopModule(id);
    }
    if (this.down().length === 0) return;
    const fd = openShare();
    try { await this.startDown(fd); } finally { closeSync(fd); }
  }

  private async startDown(shareFd: number): Promise<void> {
    for (const id of this.down()) await this.startModule(id, shareFd);
  }

  private async startModule(id: string, shareFd: number): Promise<void> {
    const w = this.wanted.get(id)!;
    let p = this.procs.get(id);
    if (p && p.key !== w.key) { await this.stopModule(id); p = undefined; }
    if (!p) {
      const proc = new EngineProcess({
        guest: `${this.o.guest} (module ${id})`, ctlSocket: this.ctlPath(id), log: this.o.log,
        onExit: (code, signal) => this.o.onExit(code, signal, id),
      });
      p = { proc, key: w.key };
      this.procs.set(id, p);
    }
    // the module's root, opened beneath the share without following a symlink (a guest swapping a directory of the
    // path for a symlink gets an error here, never a bind of something else)
    let rootFd: number;
    try {
      rootFd = openDirBeneath(shareFd, w.m.root === '' ? '.' : w.m.root).fd;
    } catch (e) {
      this.procs.delete(id);
      throw new HylicsError('HYLICS_ERR_MODULE_ROOT', `the root of module ${id} of ${this.o.guest} is not a directory inside the share: ${(e as Error).message}`, { guest: this.o.guest });
    }
    const { root, log } = this.dirs;
    try { unlinkSync(this.ctlPath(id)); } catch { /* none left behind */ }
    try {
      p.proc.spawn(LAUNCH, [root, this.confDir(id), log, this.o.lighttpd, id, ...this.o.procsFiles], [rootFd]);
    } finally {
      closeSync(rootFd); // the engine bound it; the daemon keeps none
    }
    try {
      await this.waitReady(id, p.proc);
    } catch (e) {
      await this.stopModule(id);
      throw e;
    }
  }

  private async stopModule(id: string): Promise<void> {
    const p = this.procs.get(id);
    if (!p) return;
    this.procs.delete(id);
    await p.proc.stop(lighttpdPid(p.proc));
    try { unlinkSync(this.ctlPath(id)); } catch { /* gone */ }
  }

  private ctlPath(id: string): string { return join(this.dirs.log, ltCtlSocket(id)); }

  /** Nothing to do: the manager truncates lighttpd's access logs in place (logRotation). */
  reopenLogs(): void {}

  async stop(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((id) => this.stopModule(id)));
  }

  removeDirs(): void {
    rmSync(this.o.runDir, { recursive: true, force: true });
  }

  /** The sum over the modules' processes (a process that does not answer counts nothing). */
  async status(): Promise<StubStatus> {
    const all = await Promise.all([...this.procs.values()].filter((p) => p.proc.running)
      .map(async (p) => parseLighttpdStatus(await p.proc.ctl('/status?auto'))));
    if (all.length === 0) throw new HylicsError('HYLICS_ERR_MODULE_WORKER', `no lighttpd of ${this.o.guest} runs`);
    const sum = (f: (s: StubStatus) => number): number => all.reduce((a, s) => a + f(s), 0);
    return { ...all[0]!, active: sum((s) => s.active), requests: sum((s) => s.requests) };
  }

  /** Each module's process: pid, resident memory, open connections (what does not answer is left out). */
  async moduleReports(): Promise<Record<string, ModuleProcessReport>> {
    const out: Record<string, ModuleProcessReport> = {};
    for (const [id, p] of this.procs) {
      const pid = lighttpdPid(p.proc);
      const r: ModuleProcessReport = {};
      if (pid !== undefined) {
        r.pid = pid;
        try {
          const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
          if (kb) r.rssBytes = Number(kb) * 1024;
        } catch { /* gone */ }
      }
      if (p.proc.running) {
        try { r.active = parseLighttpdStatus(await p.proc.ctl('/status?auto')).active; } catch { /* not answering */ }
      }
      out[id] = r;
    }
    return out;
  }

  /** One module's status (its own process). */
  async moduleStatus(id: string): Promise<StubStatus> {
    const p = this.procs.get(id);
    if (!p?.proc.running) throw new HylicsError('HYLICS_ERR_MODULE_WORKER', `module ${id} of ${this.o.guest} does not run`);
    return parseLighttpdStatus(await p.proc.ctl('/status?auto'));
  }

  private waitReady(id: string, proc: EngineProcess): Promise<void> {
    return proc.waitReady(async () => { await proc.ctl('/status?auto'); return true; }, (dead) => {
      const tail = proc.stderrTail;
      const err = /\(network\.c[^\n]*|can't bind[^\n]*|Address already in use[^\n]*/.exec(tail)?.[0];
      const code = err && /Address already in use|bind/.test(err) ? 'HYLICS_ERR_MODULE_PORT_IN_USE' : 'HYLICS_ERR_MODULE_WORKER';
      return new HylicsError(code, `lighttpd for module ${id} of ${this.o.guest} did not ${dead ? 'stay up' : 'answer'}${err ? `: ${err}` : ''}`,
        { guest: this.o.guest, id, stderr: tail.slice(-1024) });
    });
  }
}

/** What a module's process was started with: a change (root, addresses, limits) needs a restart of it. */
function moduleKey(m: EngineModule, limits: ModuleLimits): string {
  return JSON.stringify([m.root, m.listenAddr, m.listenPort, m.hostPort ?? null, limits]);
}

/** Host pid of lighttpd in the namespace of `proc` (the child of its pid 1). */
function lighttpdPid(proc: EngineProcess | undefined): number | undefined {
  const init = childrenOf(proc?.pid)[0];
  return childrenOf(init).find((p) => { try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'lighttpd'; } catch { return false; } });
}

function write(dir: string, name: string, text: string): void {
  const p = join(dir, name);
  writeFileSync(`${p}.tmp`, text, { mode: 0o644 });
  renameSync(`${p}.tmp`, p);
}
