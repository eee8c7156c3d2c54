// QEMU for microVM guests: the command line (memfd shared memory for virtio-fs, virtio-serial ports on Unix
// socket chardevs, virtio-blk, a routed tap, serial console to a file), a minimal QMP client (powerdown, quit,
// status), the tap device with its /32 route, and the guest's admin shell port (used by tests and benchmarks to
// run commands in the guest without depending on the agent).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants as fsc, existsSync, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { HylicsError } from '../core/errors/index.js';
import { CHANNEL_PORT, HOSTROOT_TAG, SHARE_TAG, SHELL_PORT } from './image/init.js';
import { run } from './image/run.js';
import { onLines } from './lines.js';
import { MiB } from '../core/units.js';
import { KeyedSerial } from '../core/serial.js';

/** Descriptors in the share's virtio-fs request queue (QEMU's queue-size, libvirt's queue). */
export const VIRTIOFS_QUEUE_SIZE = 1024;

export const QEMU = process.env.HYLICS_QEMU ?? 'qemu-system-x86_64';
export type Accel = 'kvm' | 'tcg';

export interface QemuConfig {
  name: string;
  accel: Accel;
  vcpus: number;
  memoryBytes: number;
  kernel: string;
  initrd: string;
  append: string;
  consoleLog: string;
  qmpSocket: string;
  channelSocket: string;
  shellSocket: string;
  shareSocket: string;
  hostRootSocket?: string;
  disk?: { path: string; format: 'raw' | 'qcow2'; direct: boolean };
  tap?: { ifname: string; mac: string; vhost: boolean };
  vsockCid?: number;
  /** Drop to this user once QEMU has opened its devices, files and sockets (-runas). */
  runAs?: string;
}

/**
 * QEMU's seccomp filter: no obsolete syscalls, no spawning processes, no changing its scheduling/affinity. Privilege
 * changes stay allowed only because -runas needs setuid after the filter is in place (as that user it has no
 * capabilities to regain anything).
 */
export const QEMU_SANDBOX = 'on,obsolete=deny,spawn=deny,resourcecontrol=deny';
/** The user QEMU runs as after its setup (it holds no file of that user's; non-dumpable after the uid change). */
export const QEMU_RUN_AS = 'nobody';

/** Memory rounded up to whole MiB (QEMU sizes). */
export const memoryMiB = (bytes: number): number => Math.max(64, Math.ceil(bytes / MiB));

/** CPU model: `host` under KVM; `max` under TCG (all features TCG emulates, which node's V8 likes). */
export const cpuModel = (accel: Accel): string => (accel === 'kvm' ? 'host' : 'max');

/** The full QEMU argv (without the binary). Pure: the driver test checks it without booting. */
export function qemuArgs(c: QemuConfig): string[] {
  const mem = memoryMiB(c.memoryBytes);
  const a = [
    '-name', `guest=${c.name},process=hylics-${c.name}`,
    '-machine', 'q35',
    '-accel', c.accel === 'tcg' ? 'tcg,thread=multi' : 'kvm',
    '-cpu', cpuModel(c.accel),
    '-smp', String(Math.max(1, c.vcpus)),
    '-m', `${mem}M`,
    // virtio-fs needs guest RAM that virtiofsd can map: a shared memfd backend
    '-object', `memory-backend-memfd,id=mem,size=${mem}M,share=on`,
    '-numa', 'node,memdev=mem',
    '-nodefaults', '-no-user-config', '-display', 'none', '-vga', 'none', '-no-reboot',
    '-kernel', c.kernel, '-initrd', c.initrd, '-append', c.append,
    // append: the daemon rotates the console by copy-and-truncate (src/os/log-file.ts)
    '-chardev', `file,id=con0,path=${c.consoleLog},append=on`, '-serial', 'chardev:con0',
    '-chardev', `socket,id=qmp0,path=${c.qmpSocket},server=on,wait=off`, '-mon', 'chardev=qmp0,mode=control',
    '-device', 'virtio-serial-pci,id=vser0',
    '-chardev', `socket,id=chan0,path=${c.channelSocket},server=on,wait=off`,
    '-device', `virtserialport,bus=vser0.0,chardev=chan0,name=${CHANNEL_PORT}`,
    '-chardev', `socket,id=sh0,path=${c.shellSocket},server=on,wait=off`,
    '-device', `virtserialport,bus=vser0.0,chardev=sh0,name=${SHELL_PORT}`,
    '-chardev', `socket,id=fs0,path=${c.shareSocket}`,
    '-device', `vhost-user-fs-pci,chardev=fs0,tag=${SHARE_TAG},queue-size=${VIRTIOFS_QUEUE_SIZE}`,
  ];
  if (c.hostRootSocket) a.push('-chardev', `socket,id=fs1,path=${c.hostRootSocket}`, '-device', `vhost-user-fs-pci,chardev=fs1,tag=${HOSTROOT_TAG}`);
  if (c.disk) {
    // cache=none (O_DIRECT): the virtual disk is not cached by the host page cache, as in the paper's setup
    const cache = c.disk.direct ? 'cache=none,aio=native' : 'cache=writeback,aio=threads';
    a.push('-drive', `file=${c.disk.path},format=${c.disk.format},if=none,id=disk0,${cache},discard=unmap`, '-device', 'virtio-blk-pci,drive=disk0');
  }
  if (c.tap) a.push('-netdev', `tap,id=net0,ifname=${c.tap.ifname},script=no,downscript=no${c.tap.vhost ? ',vhost=on' : ''}`, '-device', `virtio-net-pci,netdev=net0,mac=${c.tap.mac}`);
  if (c.vsockCid !== undefined) a.push('-device', `vhost-vsock-pci,guest-cid=${c.vsockCid}`);
  a.push('-sandbox', QEMU_SANDBOX);
  if (c.runAs) a.push('-runas', c.runAs);
  return a;
}

/** Spawn QEMU detached (it survives a daemon restart), stdout/stderr appended to `logFile`. */
export function spawnQemu(c: QemuConfig, logFile: string, binary = QEMU): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(binary, qemuArgs(c), { detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

export async function qemuVersion(binary = QEMU): Promise<string> {
  const r = await run(binary, ['--version']);
  return /version\s+(\S+)/.exec(r.stdout)?.[1] ?? r.stdout.split('\n')[0]!.trim();
}

/** Can the disk image's directory take O_DIRECT (cache=none)? tmpfs cannot. */
export function supportsDirectIo(path: string): boolean {
  try {
    const fd = openSync(path, fsc.O_RDONLY | fsc.O_DIRECT);
    closeSync(fd);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------- QMP

function lineReader(sock: Socket, onLine: (line: string) => void): void {
  onLines(sock, (l) => {
    const line = l.trim();
    if (line) onLine(line);
  });
}

/** Run one QMP command on a fresh connection (after the capabilities handshake) and return its `return`. */
/** One QMP command. QEMU creates its socket file (bind) a moment before it listens, so a refused connection is
 * retried until the deadline rather than failed at once. */
export async function qmp(
  socketPath: string,
  command: string,
  args?: Record<string, unknown>,
  timeoutMs = 5000,
): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await qmpOnce(socketPath, command, args, Math.max(100, deadline - Date.now()));
    } catch (e) {
      const refused = e instanceof HylicsError && /ECONNREFUSED|ENOENT/.test(e.message);
      if (!refused || Date.now() + 50 >= deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function qmpOnce(
  socketPath: string,
  command: string,
  args: Record<string, unknown> | undefined,
  timeoutMs: number,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let stage = 0;
    const fail = (msg: string): void => {
      sock.destroy();
      reject(new HylicsError('HYLICS_ERR_MICROVM_QMP', `QMP ${command}: ${msg}`, { socket: socketPath, command }));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    sock.on('error', (e) => {
      clearTimeout(timer);
      fail(e.message);
    });
    lineReader(sock, (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if ('event' in msg) return;
      if (stage === 0 && 'QMP' in msg) {
        stage = 1;
        sock.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        return;
      }
      if (stage === 1 && 'return' in msg) {
        stage = 2;
        sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
        return;
      }
      if (stage === 2) {
        clearTimeout(timer);
        sock.end();
        if ('error' in msg)
          reject(
            new HylicsError('HYLICS_ERR_MICROVM_QMP', `QMP ${command}: ${JSON.stringify(msg.error)}`, { command }),
          );
        else resolve(msg.return);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------- tap

/** A guest's MAC address, derived from its network index (locally administered, QEMU's 52:54:00 prefix). */
export function guestMac(index: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  return `52:54:00:48:${hex((index >> 8) & 0xff)}:${hex(index & 0xff)}`;
}

/** A tap for one guest, routed (no bridge): the host end holds hostAddr/32, and guestAddr/32 is routed to it. */
export async function createTap(ifname: string, hostAddr: string, guestAddr: string): Promise<void> {
  const ip = (args: string[]): Promise<unknown> => run('ip', args, { code: 'HYLICS_ERR_MICROVM_NETWORK' });
  await deleteTap(ifname);
  try {
    await ip(['tuntap', 'add', 'dev', ifname, 'mode', 'tap']);
    await ip(['addr', 'add', `${hostAddr}/32`, 'dev', ifname]);
    await ip(['link', 'set', ifname, 'up']);
    await ip(['route', 'replace', `${guestAddr}/32`, 'dev', ifname]);
    // forwarding so clients in other namespaces reach the guest through the host
    await run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { code: 'HYLICS_ERR_MICROVM_NETWORK' });
  } catch (e) {
    await deleteTap(ifname);
    throw e;
  }
}

export async function deleteTap(ifname: string): Promise<void> {
  await run('ip', ['link', 'del', ifname], { allowFail: true }); // the route goes with the link
}

export async function tapExists(ifname: string): Promise<boolean> {
  return existsSync(`/sys/class/net/${ifname}`);
}

// ---------------------------------------------------------------------------------------------------- guest shell

export interface GuestExecResult { stdout: string; code: number }

/** How long a guest shell command may take by default. */
export const GUEST_SHELL_TIMEOUT_MS = 60_000;
/** How often the start marker is sent until the guest's shell echoes it. */
const SHELL_KNOCK_INTERVAL_MS = 1000;
/** One probe of waitForGuestShell: at most this long, at least SHELL_PROBE_MIN_MS; then a pause before the next. */
const SHELL_PROBE_MAX_MS = 10_000;
const SHELL_PROBE_MIN_MS = 1000;
const SHELL_PROBE_PAUSE_MS = 500;
/** Per admin shell socket: its commands, one at a time. */
const shellQueues = new KeyedSerial<string>();
let execSeq = 0;

/**
 * Run a shell command in the guest (busybox sh in the initramfs, as root) over the admin shell port. Calls on
 * one socket are serialized (QEMU accepts one client per chardev). Output is stdout+stderr together.
 */
export function guestExec(
  socketPath: string,
  command: string,
  timeoutMs = GUEST_SHELL_TIMEOUT_MS,
): Promise<GuestExecResult> {
  return shellQueues.run(socketPath, () => guestExecOnce(socketPath, command, timeoutMs));
}

function guestExecOnce(socketPath: string, command: string, timeoutMs: number): Promise<GuestExecResult> {
  const id = `${process.pid}x${++execSeq}x${Date.now().toString(36)}`;
  const start = `__HYS_${id}__`;
  const doneRe = new RegExp(`__HYD_${id}_(\\d+)__`);
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let out = '';
    let sent = false;
    // Bytes that reach a virtio port while no guest process has it open are dropped (the guest's shell loop
    // reopens it after each session), so knock with a start marker until the shell echoes it, then send.
    const knock = (): void => { sock.write(`echo "__HYS_""${id}__"\n`); };
    const knocker = setInterval(knock, SHELL_KNOCK_INTERVAL_MS);
    const timer = setTimeout(() => {
      clearInterval(knocker);
      sock.destroy();
      reject(new HylicsError('HYLICS_ERR_MICROVM_GUEST_SHELL', `guest command did not finish within ${timeoutMs} ms: ${command.slice(0, 200)}`, { command: command.slice(0, 500), partial: out.slice(-500) }));
    }, timeoutMs);
    sock.on('connect', knock);
    sock.on('error', (e) => { clearInterval(knocker); clearTimeout(timer); reject(new HylicsError('HYLICS_ERR_MICROVM_GUEST_SHELL', `guest shell ${socketPath}: ${e.message}`, { socket: socketPath })); });
    sock.on('data', (b: Buffer) => {
      out += b.toString();
      if (!sent) {
        const i = out.indexOf(start);
        if (i < 0) return;
        sent = true;
        clearInterval(knocker);
        out = out.slice(i + start.length);
        sock.write(`{ ${command}\n} </dev/null 2>&1; echo "__HYD_""${id}_$?__"\n`);
      }
      const m = doneRe.exec(out);
      if (!m) return;
      clearTimeout(timer);
      sock.end();
      // drop the newline after each start marker echoed (more than one if knocks crossed) and the marker lines
      const body = out.slice(0, m.index).split(start + '\n').pop()!.replace(/^\n/, '');
      resolve({ stdout: body, code: Number(m[1]) });
    });
  });
}

/** Wait until the guest shell answers (the guest reached userspace). */
export async function waitForGuestShell(socketPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const r = await guestExec(socketPath, 'true', Math.min(SHELL_PROBE_MAX_MS, Math.max(SHELL_PROBE_MIN_MS, deadline - Date.now())));
      if (r.code === 0) return;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, SHELL_PROBE_PAUSE_MS));
  }
  throw new HylicsError('HYLICS_ERR_MICROVM_GUEST_SHELL', `guest shell did not answer within ${timeoutMs} ms${last instanceof Error ? `: ${last.message}` : ''}`, { socket: socketPath });
}
