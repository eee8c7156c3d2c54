// virtiofsd: the vhost-user server that exports a host directory into a guest over virtio-fs. Debian 12 ships
// the C virtiofsd with QEMU at /usr/lib/qemu/virtiofsd; it serves one connection and exits when the VM goes
// away, so the microvm driver starts one per export per boot.
//
// Two exports per guest:
//  - the share (the guest's tmpfs), read-write, in virtiofsd's own namespace sandbox (pivot_root into the share).
//  - a read-only "host root view" so the guest can run node (the agent) from the host's installation: a private
//    mount namespace (unshare) holding a small tmpfs with read-only, non-recursive bind mounts of /usr, the node
//    install, the package root, a few public files of /etc and the CA certificates (/etc/ssl/certs). Nothing else
//    of the host is visible (no /etc/shadow, no /etc/ssl/private, no ssh host keys, no /root, no state dir, no other
//    guest's share or disk), and the view disappears with the process: nothing to clean up. Its virtiofsd runs
//    as root (it serves root-owned files) but with nothing a read-only export needs beyond reading.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, lstatSync, openSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { HylicsError } from '../core/errors/index.js';
import { SYSROOT_MOUNTPOINTS } from './image/init.js';
import { tailLines } from './log-file.js';

const TAIL_BYTES_IN_ERRORS = 64 * 1024;

export const VIRTIOFSD = process.env.HYLICS_VIRTIOFSD ?? '/usr/lib/qemu/virtiofsd';

/** Capabilities the host view's virtiofsd drops from its default set (it keeps none of them: read-only export). */
export const HOST_VIEW_DROPPED_CAPS = ['dac_override', 'chown', 'fowner', 'fsetid', 'setuid', 'setgid', 'mknod', 'setfcap'];

/**
 * Guest page-cache policy for a virtio-fs export. `none`: the guest caches no file data (every read goes to the
 * host, opened with direct I/O), so data kept in a host tmpfs is not held twice and host-side writes are seen at
 * once. `auto`/`always`: the guest caches data (faster re-reads, up to a second copy of the share in guest RAM).
 */
export type FsCacheMode = 'none' | 'auto' | 'always';

export interface VirtiofsdOptions {
  socketPath: string;
  /** Directory to export (ignored for `hostRootView`, which builds its own). */
  source: string;
  cache: FsCacheMode;
  /** stdout+stderr of virtiofsd go here (appended). */
  logFile: string;
  /** Build and export the read-only host root view at `source` (an empty directory) instead. */
  hostRootView?: { packageRoot: string; nodeBin: string; hide: string[] };
  binary?: string;
}

export interface VirtiofsdProcess { pid: number; socketPath: string; exited: Promise<number | null> }

const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The shell script (run under `unshare --mount --propagation private`) that builds the read-only host view. */
export function hostRootViewScript(view: string, o: { packageRoot: string; nodeBin: string; hide: string[] }): string {
  const lines = ['set -e', `V=${sh(view)}`, 'mount -t tmpfs -o mode=755,size=1m hylics-hostroot "$V"'];
  const bindDir = (src: string): void => {
    lines.push(`mkdir -p "$V"${sh(src)}`, `mount --bind -o ro ${sh(src)} "$V"${sh(src)}`);
  };
  // merged-/usr Debian: /bin, /lib, /lib64, /sbin are symlinks into /usr; copy them as symlinks, bind real dirs
  bindDir('/usr');
  for (const top of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    if (!existsSync(top)) continue;
    const st = lstatSync(top);
    if (st.isSymbolicLink()) lines.push(`ln -s ${sh(readlinkSync(top))} "$V"${sh(top)}`);
    else if (st.isDirectory()) bindDir(top);
  }
  // node's installation if it is not under /usr (e.g. /opt/node)
  const nodeReal = realpathSync(o.nodeBin);
  if (!nodeReal.startsWith('/usr/')) bindDir(dirname(dirname(nodeReal)));
  if (o.nodeBin !== nodeReal && !o.nodeBin.startsWith('/usr/') && !o.nodeBin.startsWith('/bin/')) bindDir(dirname(o.nodeBin));
  // the package (entry points, node_modules); non-recursive so no share mounted below it shows through
  const pkg = resolve(o.packageRoot);
  if (!pkg.startsWith('/usr/')) bindDir(pkg);
  for (const h of o.hide) {
    const rel = relative(pkg, resolve(h));
    if (!rel.startsWith('..') && rel !== '' && existsSync(h)) lines.push(`mount -t tmpfs -o ro,size=4k hylics-hidden "$V"${sh(resolve(h))}`);
  }
  lines.push('mkdir -p "$V"/etc');
  for (const f of ['ld.so.cache', 'ld.so.conf', 'passwd', 'group', 'nsswitch.conf', 'hosts', 'localtime', 'os-release']) {
    const p = join('/etc', f);
    if (existsSync(p) && lstatSync(p).isFile()) lines.push(`touch "$V"${sh(p)}`, `mount --bind -o ro ${sh(p)} "$V"${sh(p)}`);
  }
  // CA certificates only: /etc/ssl/private (TLS keys) and everything else of /etc/ssl stay on the host
  for (const d of ['/etc/ld.so.conf.d', '/etc/ssl/certs']) if (existsSync(d)) bindDir(d);
  if (existsSync('/etc/ssl/openssl.cnf') && lstatSync('/etc/ssl/openssl.cnf').isFile()) lines.push('touch "$V"/etc/ssl/openssl.cnf', 'mount --bind -o ro /etc/ssl/openssl.cnf "$V"/etc/ssl/openssl.cnf');
  for (const m of SYSROOT_MOUNTPOINTS) lines.push(`mkdir -p "$V"/${m}`);
  lines.push('mount -o remount,ro hylics-hostroot "$V"');
  return lines.join('\n');
}

/** Start virtiofsd and resolve once its socket exists (or throw with its log tail if it exits first). */
export async function startVirtiofsd(o: VirtiofsdOptions): Promise<VirtiofsdProcess> {
  const bin = o.binary ?? VIRTIOFSD;
  if (!existsSync(bin)) throw new HylicsError('HYLICS_ERR_MISSING_DEPENDENCY', `virtiofsd not found at ${bin}: apt-get install qemu-system-x86 (Debian 12 ships it in /usr/lib/qemu)`, { package: 'qemu-system-x86' });
  const vArgs = [`--socket-path=${o.socketPath}`, '-o', `source=${o.source}`, '-o', `cache=${o.cache}`, '-o', 'sandbox=namespace', '-o', 'log_level=warn', '-o', 'no_posix_lock', '-o', 'no_flock'];
  // the read-only view only looks up and reads root's files: none of the capabilities virtiofsd keeps for writing
  // as the guest's users (no DAC override: it reads what root may read as owner, nothing beyond file modes)
  if (o.hostRootView) vArgs.push('-o', `modcaps=${HOST_VIEW_DROPPED_CAPS.map((c) => `-${c}`).join(':')}`);
  let cmd = bin;
  let args = vArgs;
  if (o.hostRootView) {
    cmd = 'unshare';
    const script = `${hostRootViewScript(o.source, o.hostRootView)}\nexec ${[bin, ...vArgs].map(sh).join(' ')}`;
    args = ['--mount', '--propagation', 'private', '--', 'sh', '-c', script];
  }
  const fd = openSync(o.logFile, 'a');
  let child;
  try {
    child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<number | null>((res) => {
    child.on('exit', (code) => res(code));
    child.on('error', () => res(-1));
  });
  child.unref();
  const pid = child.pid;
  let gone: number | null | undefined;
  void exited.then((c) => { gone = c; });
  const deadline = Date.now() + 15_000;
  while (!existsSync(o.socketPath)) {
    if (gone !== undefined || pid === undefined) {
      throw new HylicsError('HYLICS_ERR_MICROVM_VIRTIOFSD_FAILED', `virtiofsd for ${o.hostRootView ? 'the host root view' : o.source} exited (${gone}) before listening: ${await logTail(o.logFile, 5)}`, { socket: o.socketPath });
    }
    if (Date.now() > deadline) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      throw new HylicsError('HYLICS_ERR_MICROVM_VIRTIOFSD_FAILED', `virtiofsd did not create ${o.socketPath} within 15 s`, { socket: o.socketPath });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { pid: pid!, socketPath: o.socketPath, exited };
}

/** The last lines of a log, joined for an error message (read from the end: a guest may have made it huge). */
export async function logTail(file: string, lines: number): Promise<string> {
  const t = await tailLines(file, lines, TAIL_BYTES_IN_ERRORS).catch(() => undefined);
  if (t === undefined) return '(no log)';
  return t.join(' | ') || '(empty log)';
}
