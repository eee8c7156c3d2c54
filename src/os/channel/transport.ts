// Transports of the control channel: each gives a Node Duplex of raw bytes; the RPC (./peer.ts) knows nothing
// about them. Unix sockets (sandbox guests, the agent's app socket, QEMU's chardev socket on the host) and the
// guest end of a virtio-serial port (microVM guests).
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { constants as FS, promises as fsp } from 'node:fs';
import { open as fsOpen, read as fsRead, write as fsWrite, close as fsClose } from 'node:fs';
import { join } from 'node:path';
import { HylicsError } from '../../core/errors/index.js';

export interface UnixListenOptions {
  /**
   * File mode of the socket (0o600: only root on the host; the agent's app socket is 0o666 so apps of any user can use
   * it).
   */
  mode?: number;
  /** Accepted sockets are not read until the handler says so (it may read them itself, e.g. with SCM_RIGHTS). */
  pauseOnConnect?: boolean;
}

/** Listen on a Unix socket path, replacing a stale socket file left by a previous run (never a non-socket file). */
export async function listenUnix(
  path: string,
  onConnection: (s: Socket) => void,
  opts: UnixListenOptions = {},
): Promise<Server> {
  try {
    const st = await fsp.lstat(path);
    if (!st.isSocket())
      throw new HylicsError('HYLICS_ERR_CONFLICT', `${path} exists and is not a socket; refusing to replace it`, {
        path,
      });
    await fsp.unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const server = createServer({ allowHalfOpen: false, pauseOnConnect: opts.pauseOnConnect === true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await fsp.chmod(path, opts.mode ?? 0o600);
  return server;
}

/** Connect to a Unix socket; rejects with the errno error (ENOENT, ECONNREFUSED...) or HYLICS_ERR_TIMEOUT. */
export function connectUnix(path: string, timeoutMs = 5000): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const s = createConnection({ path });
    const t = setTimeout(() => { s.destroy(); reject(new HylicsError('HYLICS_ERR_TIMEOUT', `connecting to ${path} took over ${timeoutMs} ms`, { path })); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.off('error', onErr); resolve(s); });
    const onErr = (e: Error) => { clearTimeout(t); reject(e); };
    s.once('error', onErr);
  });
}

/** Stop listening and remove the socket file. Connections already accepted stay open (close them yourself:
 * net.Server.close() only calls back once they are all gone, so we do not wait for that). */
export async function closeUnixServer(server: Server, path?: string): Promise<void> {
  server.close();
  if (path) await fsp.unlink(path).catch(() => {});
}

export const VIRTIO_PORTS_SYSFS = '/sys/class/virtio-ports';

/** Find the device of the virtio-serial port named `name` (e.g. org.hylics.channel.0): /dev/vportNpM. */
export async function findVirtioPort(name: string, opts: { sysRoot?: string; devRoot?: string } = {}): Promise<string> {
  const sysRoot = opts.sysRoot ?? VIRTIO_PORTS_SYSFS;
  const devRoot = opts.devRoot ?? '/dev';
  let entries: string[] = [];
  try {
    entries = await fsp.readdir(sysRoot);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const port of entries.sort()) {
    const n = await fsp.readFile(join(sysRoot, port, 'name'), 'utf8').catch(() => '');
    if (n.trim() === name) return join(devRoot, port);
  }
  throw new HylicsError('HYLICS_ERR_CHANNEL_NO_PORT', `no virtio-serial port named ${name} under ${sysRoot} (found: ${entries.join(', ') || 'none'})`, { name, found: entries });
}

/**
 * A character device (virtio-serial port) as a Duplex. Node has no pollable stream for character devices, so
 * reads are blocking read(2)s on libuv's thread pool: one thread waits on the port while the agent is connected
 * (the agent raises UV_THREADPOOL_SIZE for that). read() returns 0 while the host end is not connected: that ends
 * the stream, and the agent reopens the port with backoff.
 */
export class CharDeviceStream extends Duplex {
  private fd: number | undefined;
  private reading = false;

  private constructor(readonly path: string, fd: number) {
    super({ allowHalfOpen: false });
    this.fd = fd;
  }

  static open(path: string): Promise<CharDeviceStream> {
    return new Promise((resolve, reject) => {
      fsOpen(path, FS.O_RDWR | FS.O_NOCTTY, (err, fd) => (err ? reject(err) : resolve(new CharDeviceStream(path, fd))));
    });
  }

  override _read(size: number): void {
    if (this.reading || this.fd === undefined) return;
    this.reading = true;
    const buf = Buffer.allocUnsafe(Math.max(4096, Math.min(size, 65536)));
    fsRead(this.fd, buf, 0, buf.length, null, (err, n) => {
      this.reading = false;
      if (this.fd === undefined) return;
      if (err) {
        if (err.code === 'EAGAIN' || err.code === 'EINTR') { setTimeout(() => this._read(size), 10); return; }
        this.destroy(err);
        return;
      }
      if (n === 0) { this.push(null); return; }
      if (this.push(buf.subarray(0, n))) this._read(size);
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const fd = this.fd;
    if (fd === undefined) { cb(new Error('port closed')); return; }
    const writeAll = (off: number): void => {
      fsWrite(fd, chunk, off, chunk.length - off, null, (err, n) => {
        if (err) {
          if (err.code === 'EAGAIN') { setTimeout(() => writeAll(off), 5); return; }
          cb(err);
          return;
        }
        if (off + n < chunk.length) writeAll(off + n); else cb();
      });
    };
    writeAll(0);
  }

  override _final(cb: (e?: Error | null) => void): void {
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    const fd = this.fd;
    this.fd = undefined;
    // a read blocked in the thread pool keeps its file reference and returns when data or a host disconnect
    // arrives; its result is then dropped (fd undefined)
    if (fd === undefined) { cb(err); return; }
    fsClose(fd, () => cb(err));
  }
}

/** Open the guest end of the named virtio-serial port. */
export async function openVirtioPort(
  name: string,
  opts: { sysRoot?: string; devRoot?: string } = {},
): Promise<CharDeviceStream> {
  return CharDeviceStream.open(await findVirtioPort(name, opts));
}
