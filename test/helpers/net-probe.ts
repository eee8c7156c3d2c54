// Small network probes for firewall tests: TCP/UDP listeners and clients run as `node -e` child processes, in the
// host namespace or in a network namespace (`ip netns exec`). Every probe is a real socket; nothing is simulated.
import { spawn, type ChildProcess } from 'node:child_process';
import { NODE_BIN } from '../../src/os/self.js';

function argvIn(ns: string | undefined, code: string, args: string[]): [string, string[]] {
  const argv = ['-e', code, '--', ...args];
  return ns ? ['ip', ['netns', 'exec', ns, NODE_BIN, ...argv]] : [NODE_BIN, argv];
}

export interface Listener {
  port: number;
  /** Lines the listener printed after "ready": "conn <remote address>" (tcp) or "<source> <payload>" (udp). */
  lines: string[];
  /** Resolves once a line matching `re` has been printed. */
  waitFor(re: RegExp): Promise<string>;
  /** Resolves once at least `n` lines have been printed. */
  waitCount(n: number): Promise<void>;
  close(): Promise<void>;
}

const TCP_SERVER = `
const net = require('net');
const [host, port] = process.argv.slice(1);
const s = net.createServer((c) => { c.on('error', () => {}); console.log('conn ' + c.remoteAddress); c.end('hi'); });
s.listen({ host, port: Number(port), ipv6Only: false }, () => console.log('ready ' + s.address().port));`;

const UDP_SERVER = `
const dgram = require('dgram');
const [host, port] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => console.log(r.address + ' ' + m.toString()));
s.bind(Number(port), host, () => console.log('ready ' + s.address().port));`;

function listen(kind: 'tcp' | 'udp', ns: string | undefined, host: string, port: number): Promise<Listener> {
  const [cmd, args] = argvIn(ns, kind === 'tcp' ? TCP_SERVER : UDP_SERVER, [host, String(port)]);
  const p: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  let buf = '';
  let err = '';
  return new Promise((resolve, reject) => {
    let ready = false;
    p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!ready) {
          const m = /^ready (\d+)$/.exec(line);
          if (m) {
            ready = true;
            resolve({
              port: Number(m[1]),
              lines,
              waitFor: (re) => {
                const hit = lines.find((l) => re.test(l));
                return hit !== undefined ? Promise.resolve(hit) : new Promise((res) => waiters.push({ re, resolve: res }));
              },
              waitCount: async (n) => { while (lines.length < n) await new Promise((res) => waiters.push({ re: /(?:)/, resolve: res })); },
              close: async () => {
                if (p.exitCode !== null || p.signalCode !== null) return;
                const gone = new Promise((r) => p.once('exit', r));
                p.kill('SIGKILL');
                await gone;
              },
            });
          }
          continue;
        }
        lines.push(line);
        for (const w of waiters.splice(0)) {
          if (w.re.test(line)) w.resolve(line); else waiters.push(w);
        }
      }
    });
    p.on('exit', (code) => { if (!ready) reject(new Error(`${kind} listener on ${host} exited ${code}: ${err}`)); });
  });
}

export const listenTcp = (ns: string | undefined, host: string, port = 0): Promise<Listener> => listen('tcp', ns, host, port);
export const listenUdp = (ns: string | undefined, host: string, port = 0): Promise<Listener> => listen('udp', ns, host, port);

const TCP_CLIENT = `
const net = require('net');
const [host, port, local, ms] = process.argv.slice(1);
const c = net.connect({ host, port: Number(port), ...(local ? { localAddress: local } : {}) });
const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, Number(ms));
c.on('connect', () => { console.log('connected'); clearTimeout(t); c.destroy(); });
c.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });`;

const UDP_CLIENT = `
const dgram = require('dgram');
const [host, port, local, payload] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.bind({ address: local || undefined, port: 0 }, () => s.send(payload, Number(port), host, (e) => { if (e) { console.error(e.message); process.exit(1); } s.close(); }));`;

function runProbe(ns: string | undefined, code: string, args: string[]): Promise<string> {
  const [cmd, argv] = argvIn(ns, code, args);
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`probe exited ${code}: ${err.trim()}`))));
  });
}

/**
 * Open a TCP connection: 'connected', 'timeout' (no answer within waitMs: the SYN was dropped) or 'error CODE'
 * (e.g. ECONNREFUSED). The wait bounds a probe; it is not a speed assertion.
 */
export function tcpConnect(ns: string | undefined, host: string, port: number, opts: { localAddress?: string; waitMs?: number } = {}): Promise<string> {
  return runProbe(ns, TCP_CLIENT, [host, String(port), opts.localAddress ?? '', String(opts.waitMs ?? 3000)]);
}

/** Send one UDP datagram (from `localAddress` when given). */
export async function udpSend(ns: string | undefined, host: string, port: number, payload: string, opts: { localAddress?: string } = {}): Promise<void> {
  await runProbe(ns, UDP_CLIENT, [host, String(port), opts.localAddress ?? '', payload]);
}
