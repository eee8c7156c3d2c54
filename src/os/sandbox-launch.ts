// Launching a sandbox guest: a detached process tree that joins the guest's cgroup and network namespace,
// makes a new mount + pid namespace, and runs a small POSIX-shell init as pid 1 there. The init sets up the
// guest's view of the file system (share at /mnt/hylics, run dir at /run/hylics, the rest of the state dir
// and other guests' netns handles gone), then supervises the guest command (the agent): it restarts it with
// backoff when it dies, reaps orphans (a shell in `wait` reaps any child, unlike Node), and on SIGTERM
// forwards it and exits, which makes the kernel kill everything left in the pid namespace.
import { closeSync, openSync } from 'node:fs';
import { tailBytes } from './log-file.js';
import { spawn } from 'node:child_process';
import { HylicsError } from '../core/errors/index.js';
import { netnsPath } from './netns.js';
import { childrenOf, isProcessAlive, nsPids, processStartTime } from './proc.js';
import { readMounts } from './mount.js';
import { GUEST_RUN_DIR, GUEST_SHARE_DIR } from '../core/guest-layout.js';

export { GUEST_SHARE_DIR, GUEST_RUN_DIR } from '../core/guest-layout.js';
/** The guest's disk tier (docs/tier.md): a per-guest directory on the host's disk, bound here in the guest. */
export const GUEST_DISK_TIER_DIR = '/var/lib/hylics-tier';

/** $0 = hylics-enter; args: cgroup.procs files..., --, command... Runs as the session leader the daemon spawns. */
const ENTER_SCRIPT = `
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  echo $$ > "$1" || { echo "hylics-enter: cannot join cgroup ($1)" >&2; exit 97; }
  shift
done
shift
exec "$@"
`;

/**
 * Capabilities removed from the bounding set of the supervised command (the agent and all it runs): no mounts,
 * setns, module loading, raw I/O, ptrace... so it cannot undo its mount view or leave its cgroup/netns. It keeps
 * the rest, notably CAP_NET_ADMIN (TCP_REPAIR for socket offload) and CAP_NET_BIND_SERVICE.
 */
export const DEFAULT_DROPPED_CAPS = ['sys_admin', 'sys_module', 'sys_rawio', 'sys_boot', 'sys_ptrace', 'sys_time', 'mknod',
  'mac_admin', 'mac_override', 'syslog', 'sys_pacct', 'linux_immutable', 'audit_control'];

/** oom_score_adj of the guest program under the init (-1000..1000; the init keeps 0). */
const GUEST_PROGRAM_OOM_SCORE_ADJ = 500;

/** The init's supervision of the guest program ("$@"): restart with backoff, forward TERM, reap orphans. Needs
 * name, term, child, log() and the trap set. */
const SUPERVISE_LOOP = `backoff=1
while [ "$term" = 0 ]; do
  started=$(cut -d. -f1 /proc/uptime)
  # the program (and all it starts) is the OOM killer's choice before the init: an init killed by the memory
  # limit ends the whole guest instead of one restartable program (raising the score needs no privilege)
  ( echo ${GUEST_PROGRAM_OOM_SCORE_ADJ} > /proc/self/oom_score_adj 2>/dev/null; exec "$@" ) &
  child=$!
  # a TERM that came before child was set found nothing to forward: forward it now
  [ "$term" = 1 ] && kill -TERM "$child" 2>/dev/null
  log "started the guest program (pid $child)"
  while :; do wait "$child"; rc=$?; kill -0 "$child" 2>/dev/null || break; done
  child=""
  [ "$term" = 1 ] && break
  now=$(cut -d. -f1 /proc/uptime)
  [ $((now - started)) -ge 30 ] && backoff=1
  log "the guest program exited with status $rc; restarting in \${backoff}s"
  sleep "$backoff" & wait $!
  backoff=$((backoff * 2)); [ "$backoff" -gt 30 ] && backoff=30
done
log "stopping"
exit 0
`;

/** $0 = hylics-init; args: NAME -- command... The pid 1 of a container guest: crun has made its root file system,
 * namespaces and mounts; the init only supervises the guest program. */
export const CONTAINER_INIT_SCRIPT = `
set -u
name=$1; shift
[ "$#" -gt 0 ] && [ "$1" = "--" ] && shift
log() { echo "hylics-init[$name]: $*" >&2; }
term=0; child=""
trap 'term=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT HUP
log "ready"
${SUPERVISE_LOOP}`;

/** $0 = hylics-init; args: NAME SHARE RUNDIR STATEDIR DROPCAPS DISKTIER -- command... Runs as pid 1 in the guest's
 * namespaces. DISKTIER may be empty (no disk tier bound). */
export const INIT_SCRIPT = `
set -u
name=$1; share=$2; rundir=$3; state=$4; dropcaps=$5; disktier=$6; shift 6
[ "$#" -gt 0 ] && [ "$1" = "--" ] && shift
log() { echo "hylics-init[$name]: $*" >&2; }
die() { log "$*"; exit 98; }
# the trap first: pid 1 ignores signals it has no handler for, so a stop right after start must find it
term=0; child=""
trap 'term=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT HUP
mount --make-rprivate / 2>/dev/null
mount --bind "$share" ${GUEST_SHARE_DIR} || die "cannot bind the share $share at ${GUEST_SHARE_DIR}"
mount --bind "$rundir" ${GUEST_RUN_DIR} || die "cannot bind $rundir at ${GUEST_RUN_DIR}"
# the guest's own disk tier (before the state dir it lives in is hidden)
[ -n "$disktier" ] && { mount --bind "$disktier" ${GUEST_DISK_TIER_DIR} || die "cannot bind $disktier at ${GUEST_DISK_TIER_DIR}"; }
# Drop this namespace's copies of the state dir's mounts (other guests' shares) and of netns handles: hidden is
# not enough, a copy would also keep another guest's tmpfs or netns alive after the host removed it.
awk -v s="$state" '{ fs = ""; for (i = 7; i <= NF; i++) if ($i == "-") { fs = $(i + 1); break } }
  $5 == s || index($5, s "/") == 1 || $5 == "/run/netns" || index($5, "/run/netns/") == 1 || fs == "nsfs" { print $5 }' \\
  /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
mount -t tmpfs -o ro,size=4k,mode=0755,nosuid,nodev,noexec hylics-hidden "$state" || die "cannot hide $state"
[ -d /run/netns ] && mount -t tmpfs -o ro,size=4k,mode=0755,nosuid,nodev,noexec hylics-hidden /run/netns
# a read-only sysfs of the guest's own netns instead of the host's /sys (and the cgroup file systems under it)
umount -l /sys 2>/dev/null
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys || die "cannot mount sysfs"
[ -n "$dropcaps" ] && set -- setpriv --bounding-set "$dropcaps" -- "$@"
log "ready"
${SUPERVISE_LOOP}`;

export interface SandboxLaunchSpec {
  name: string;
  netns: string;
  /** cgroup.procs files the launcher writes itself into before anything else runs. */
  cgroupProcsFiles: string[];
  /** Host paths. */
  share: string;
  runDir: string;
  stateDir: string;
  /** stdout+stderr of the init and the command (appended). */
  logFile: string;
  /** argv of the supervised guest command, [0] = program. */
  command: string[];
  /** Host directory bound at GUEST_DISK_TIER_DIR in the guest (the tiered store's disk tier); none when unset. */
  diskTier?: string;
  /** Capabilities to drop from the command's bounding set (names as in capabilities(7) without CAP_). */
  dropCapabilities?: string[];
  env?: NodeJS.ProcessEnv;
  /** How long the guest has to become ready (default SANDBOX_READY_TIMEOUT_MS). */
  readyTimeoutMs?: number;
}

export interface SandboxProcesses {
  /** The session leader the daemon spawned (nsenter/unshare; waits for the init). */
  launcherPid: number;
  launcherStartTime: number;
  /** Host pid of the guest's pid 1. */
  initPid: number;
  initStartTime: number;
}

/** argv of the whole launch chain (exported for docs and tests). */
export function launchArgv(s: SandboxLaunchSpec): string[] {
  return [
    '/bin/sh', '-c', ENTER_SCRIPT, 'hylics-enter', ...s.cgroupProcsFiles, '--',
    'nsenter', `--net=${netnsPath(s.netns)}`, '--',
    'unshare', '--mount', '--pid', '--fork', '--mount-proc', '--propagation', 'private', '--',
    '/bin/sh', '-c', INIT_SCRIPT, 'hylics-init', s.name, s.share, s.runDir, s.stateDir,
    (s.dropCapabilities ?? DEFAULT_DROPPED_CAPS).map((c) => `-${c.toLowerCase().replace(/^cap_/, '')}`).join(','), s.diskTier ?? '', '--', ...s.command,
  ];
}

/** How long a sandbox guest has to become ready by default. */
export const SANDBOX_READY_TIMEOUT_MS = 10_000;
/** The end of the guest's log quoted in a start failure (bytes). */
const START_FAILURE_LOG_BYTES = 600;

async function logTail(file: string, bytes: number): Promise<string> {
  try { return (await tailBytes(file, bytes)).toString('utf8').trim(); } catch { return ''; }
}

/**
 * Start the guest detached (own session, stdio to the log file), so it outlives the daemon. Resolves once the
 * init is pid 1 in its namespaces and its mounts are in place; throws HYLICS_ERR_SANDBOX_START_FAILED with the
 * log's tail otherwise (the caller removes the cgroup/netns, which also kills anything left).
 */
export async function launchSandbox(s: SandboxLaunchSpec): Promise<SandboxProcesses> {
  const argv = launchArgv(s);
  const fd = openSync(s.logFile, 'a', 0o640);
  let launcherPid: number;
  try {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true, stdio: ['ignore', fd, fd], cwd: '/',
      env: s.env ?? { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8', HYLICS_GUEST_NAME: s.name },
    });
    child.on('error', () => { /* reported below: pid undefined or the process gone */ });
    child.unref();
    if (child.pid === undefined) throw new HylicsError('HYLICS_ERR_SANDBOX_START_FAILED', `cannot spawn the sandbox launcher for ${s.name}`, { name: s.name });
    launcherPid = child.pid;
  } finally {
    closeSync(fd);
  }
  const launcherStartTime = (await processStartTime(launcherPid)) ?? 0;
  const readyTimeoutMs = s.readyTimeoutMs ?? SANDBOX_READY_TIMEOUT_MS;
  const deadline = Date.now() + readyTimeoutMs;
  let initPid: number | undefined;
  for (;;) {
    if (!(await isProcessAlive(launcherPid))) {
      throw new HylicsError('HYLICS_ERR_SANDBOX_START_FAILED', `sandbox guest ${s.name} exited during start: ${await logTail(s.logFile, START_FAILURE_LOG_BYTES)}`, { name: s.name, logFile: s.logFile });
    }
    if (initPid === undefined) {
      for (const c of await childrenOf(launcherPid)) {
        const ns = await nsPids(c);
        if (ns && ns[ns.length - 1] === 1 && ns.length >= 2) initPid = c;
      }
    }
    if (initPid !== undefined) {
      try {
        const mounts = await readMounts(initPid);
        if (mounts.some((m) => m.mountPoint === s.stateDir && m.source === 'hylics-hidden')) break;
      } catch { /* init gone or not yet readable: the liveness check above tells */ }
    }
    if (Date.now() > deadline) {
      throw new HylicsError('HYLICS_ERR_SANDBOX_START_FAILED', `sandbox guest ${s.name} did not become ready within ${readyTimeoutMs} ms: ${await logTail(s.logFile, START_FAILURE_LOG_BYTES)}`, { name: s.name, logFile: s.logFile });
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const initStartTime = (await processStartTime(initPid))!;
  return { launcherPid, launcherStartTime, initPid, initStartTime };
}
