// The OCI runtime configuration (config.json, runtime-spec 1.0) of a sandbox guest run as a container by crun:
// its own root file system, user namespace (guest root = an unprivileged host uid range), pid/mount/ipc/uts/
// network namespaces created inside that user namespace (so the guest's CAP_NET_ADMIN works on its own netns:
// TCP_REPAIR for socket offload), a seccomp filter, a Docker-like capability set plus CAP_NET_ADMIN, and only
// the standard /dev nodes. Pure: builds JSON from paths, no I/O.

/** Host uids/gids given to guests: guest i maps 0..GUEST_ID_RANGE-1 to GUEST_ID_BASE + i * GUEST_ID_RANGE.... */
export const GUEST_ID_BASE = 0x4000_0000;
/** ids per guest (0..65535 inside: nobody/nogroup included). */
export const GUEST_ID_RANGE = 0x1_0000;
/** Network indexes are small (hyhN, 10.213.N.x): below this, the ranges stay under 2^31. */
export const GUEST_ID_MAX_INDEX = 0x4000;

/** Host uid (= gid) that guest root is, for the guest with network index `index`. */
export function guestRootHostId(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= GUEST_ID_MAX_INDEX) throw new RangeError(`guest index ${index} out of range`);
  return GUEST_ID_BASE + index * GUEST_ID_RANGE;
}

/** Docker's default capability set, plus NET_ADMIN (the guest's own netns: TCP_REPAIR, its routes and addresses).
 * All of them act only on what the guest's user namespace owns. */
export const CONTAINER_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE', 'CAP_NET_ADMIN'];

/**
 * Syscalls the seccomp filter refuses with EPERM: those Docker's default profile refuses to a container without
 * CAP_SYS_ADMIN (kernel keyring, modules, kexec, bpf, perf, ptrace and cross-process memory, mounts and new
 * namespaces, clock and swap, handle-based opens, io_uring, userfaultfd...). The rest is allowed: a denylist
 * keeps what the agent and the programs it runs need without an allowlist to maintain per libc.
 */
export const SECCOMP_DENIED = ['acct', 'add_key', 'bpf', 'clock_adjtime', 'clock_settime', 'create_module', 'delete_module',
  'finit_module', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'get_kernel_syms', 'init_module', 'io_uring_enter',
  'io_uring_register', 'io_uring_setup', 'ioperm', 'iopl', 'kcmp', 'kexec_file_load', 'kexec_load', 'keyctl',
  'lookup_dcookie', 'mount', 'mount_setattr', 'move_mount', 'name_to_handle_at', 'nfsservctl', 'open_by_handle_at',
  'open_tree', 'perf_event_open', 'pivot_root', 'process_vm_readv', 'process_vm_writev', 'ptrace', 'query_module',
  'quotactl', 'reboot', 'request_key', 'setns', 'settimeofday', 'swapoff', 'swapon', '_sysctl', 'syslog', 'umount2',
  'unshare', 'uselib', 'userfaultfd', 'ustat', 'vhangup'];

/** clone() flags that make namespaces: refused (a new user namespace would give the guest new capabilities). */
export const CLONE_NAMESPACE_FLAGS: Record<string, number> = {
  CLONE_NEWNS: 0x0002_0000, CLONE_NEWCGROUP: 0x0200_0000, CLONE_NEWUTS: 0x0400_0000, CLONE_NEWIPC: 0x0800_0000,
  CLONE_NEWUSER: 0x1000_0000, CLONE_NEWPID: 0x2000_0000, CLONE_NEWNET: 0x4000_0000,
};

const EPERM = 1;
const ENOSYS = 38;

function seccompArchitectures(arch: string): string[] {
  if (arch === 'x64') return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
  if (arch === 'arm64') return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
  return [];
}

export function seccompProfile(arch: string): Record<string, unknown> {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: seccompArchitectures(arch),
    syscalls: [
      { names: SECCOMP_DENIED, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
      // glibc falls back to clone() on ENOSYS, where the flags can be checked (clone3 passes them in memory)
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      ...Object.values(CLONE_NAMESPACE_FLAGS).map((flag) => ({
        names: ['clone'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM,
        args: [{ index: 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }],
      })),
    ],
  };
}

export interface ContainerConfigSpec {
  hostname: string;
  /** Absolute host path of the container's root (the overlay's merged directory). */
  rootfs: string;
  /** argv of the container's pid 1. */
  args: string[];
  env: string[];
  /** Host uid = gid of guest root (guestRootHostId). */
  hostId: number;
  /** Host directories bound read-only at the same path (the system's /usr, Hylics' package, node). */
  readOnlyBinds: string[];
  /** Host directories bound read-write, id-mapped (files keep their host owners: root-owned files are guest
   * root's, what guest root writes is root's on the host), nosuid, nodev. [host, guest] pairs. */
  idmappedBinds: Array<[string, string]>;
  /** Size of /dev/shm in bytes. */
  shmBytes: number;
  /** process.arch (seccomp architectures). */
  arch: string;
}

export function containerConfig(s: ContainerConfigSpec): Record<string, unknown> {
  const caps = [...CONTAINER_CAPS];
  return {
    ociVersion: '1.0.0',
    hostname: s.hostname,
    root: { path: s.rootfs, readonly: false },
    process: {
      terminal: false, user: { uid: 0, gid: 0 }, cwd: '/', args: s.args, env: s.env, noNewPrivileges: true,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
    },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${s.shmBytes}`] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      // the guest's own netns' view of /sys, read-only
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      ...s.readOnlyBinds.map((p) => ({ destination: p, type: 'bind', source: p, options: ['rbind', 'ro', 'nosuid', 'nodev'] })),
      ...s.idmappedBinds.map(([host, guest]) => ({ destination: guest, type: 'bind', source: host, options: ['rbind', 'rw', 'nosuid', 'nodev', 'idmap'] })),
    ],
    linux: {
      uidMappings: [{ containerID: 0, hostID: s.hostId, size: GUEST_ID_RANGE }],
      gidMappings: [{ containerID: 0, hostID: s.hostId, size: GUEST_ID_RANGE }],
      // created together with the user namespace, so it owns them (the netns is the guest's: CAP_NET_ADMIN there)
      namespaces: [{ type: 'user' }, { type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      seccomp: seccompProfile(s.arch),
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/fs/cgroup'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
