// The benches' cheap HTTP/1.1 download client: drives bench/lib/splice-client.py (one long-lived python3 per
// SpliceClient; one URL per line in, one JSON result per line out). The body moves socket -> pipe -> /dev/null by
// splice(2), never copied to user space; status 200, Content-Length and the byte count are checked (see the .py).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PACKAGE_ROOT } from '../../src/os/self.js';

export const SPLICE_CLIENT_PY = join(PACKAGE_ROOT, 'bench', 'lib', 'splice-client.py');

export interface SpliceDownload {
  status: number; bytes: number;
  /** Connect to the last body byte. */
  seconds: number;
  /** Connect to the first body bytes (the server's time to start sending the body). */
  firstSeconds: number;
  /** The client process's user + system CPU over this download (its start-up not included). */
  cpuSeconds: number;
}

type Waiter = { resolve: (d: SpliceDownload) => void; reject: (e: Error) => void };

export class SpliceClient {
  private readonly waiting: Waiter[] = [];
  private ended: Error | undefined;
  private stderr = '';

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.on('data', (b: Buffer) => { this.stderr = (this.stderr + b.toString()).slice(-2000); });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const w = this.waiting.shift();
      if (!w) return;
      try {
        const r = JSON.parse(line) as { ok: boolean; error?: string } & SpliceDownload;
        const { status, bytes, seconds, firstSeconds, cpuSeconds } = r;
        if (r.ok) w.resolve({ status, bytes, seconds, firstSeconds, cpuSeconds });
        else w.reject(new Error(`splice client: ${r.error}`));
      } catch { w.reject(new Error(`splice client: unreadable answer ${line.slice(0, 200)}`)); }
    });
    const end = (why: string): void => {
      this.ended ??= new Error(`splice client ${why}${this.stderr ? `: ${this.stderr.trim()}` : ''}`);
      for (const w of this.waiting.splice(0)) w.reject(this.ended);
    };
    child.on('error', (e) => end(`failed: ${e.message}`));
    child.on('close', (code, signal) => end(`exited (${signal ?? code})`));
  }

  /** Start the client; `prefix` runs it elsewhere, e.g. ['ip', 'netns', 'exec', NS, 'taskset', '-c', '0']. */
  static start(prefix: string[] = []): SpliceClient {
    const argv = [...prefix, 'python3', SPLICE_CLIENT_PY];
    return new SpliceClient(spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  /** One full download of `url` (http://IPv4:port/path); rejects on any failure the client reports. */
  get(url: string): Promise<SpliceDownload> {
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(`${url}\n`);
    });
  }

  /** Close its stdin and wait for it to exit. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => { this.child.once('close', () => resolve()); this.child.stdin.end(); });
  }
}
