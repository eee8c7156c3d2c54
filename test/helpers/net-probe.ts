// Small network probes for firewall and offload tests: TCP/UDP listeners and clients run as `node -e` child
// processes, in the host namespace or in a network namespace (`ip netns exec`), and a client namespace behind the
// host to run them (or curl, wrk, tcpdump) in. Every probe is a real socket; nothing is simulated.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { run, runRaw } from '../../src/os/exec.js';
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
const [host, port, echo] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => { console.log(r.address + ' ' + m.toString()); if (echo) s.send(m, r.port, r.address); });
s.bind(Number(port), host, () => console.log('ready ' + s.address().port));`;

function listen(kind: 'tcp' | 'udp', ns: string | undefined, host: string, port: number, echo = false): Promise<Listener> {
  const [cmd, args] = argvIn(ns, kind === 'tcp' ? TCP_SERVER : UDP_SERVER, [host, String(port), echo ? '1' : '']);
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
                return hit !== undefined
                  ? Promise.resolve(hit)
                  : new Promise((res) => waiters.push({ re, resolve: res }));
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
/** A UDP listener; with `echo` it sends every datagram back to its sender (so conntrack sees a reply). */
export const listenUdp = (ns: string | undefined, host: string, port = 0, opts: { echo?: boolean } = {}): Promise<Listener> => listen('udp', ns, host, port, opts.echo === true);

const TCP_CLIENT = `
const net = require('net');
const [host, port, local, ms] = process.argv.slice(1);
const c = net.connect({ host, port: Number(port), ...(local ? { localAddress: local } : {}) });
const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, Number(ms));
c.on('connect', () => { console.log('connected'); clearTimeout(t); c.destroy(); });
c.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });`;

const UDP_CLIENT = `
const dgram = require('dgram');
const [host, port, local, payload, localPort] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.bind({ address: local || undefined, port: Number(localPort || 0) }, () => s.send(payload, Number(port), host, (e) => { if (e) { console.error(e.message); process.exit(1); } s.close(); }));`;

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
export function tcpConnect(
  ns: string | undefined,
  host: string,
  port: number,
  opts: { localAddress?: string; waitMs?: number } = {},
): Promise<string> {
  return runProbe(ns, TCP_CLIENT, [host, String(port), opts.localAddress ?? '', String(opts.waitMs ?? 3000)]);
}

/** Send one UDP datagram (from `localAddress` and `localPort` when given). */
export async function udpSend(
  ns: string | undefined,
  host: string,
  port: number,
  payload: string,
  opts: { localAddress?: string; localPort?: number } = {},
): Promise<void> {
  await runProbe(ns, UDP_CLIENT, [host, String(port), opts.localAddress ?? '', payload, String(opts.localPort ?? 0)]);
}

// A hand-made ICMP error (Node has no raw sockets): IPv4 header with any source, ICMP type 3 code 3 (port
// unreachable) quoting a UDP packet innerSrc:sport -> innerDst:dport, sent through a raw IP_HDRINCL socket.
const ICMP_ERROR = `
import socket, struct, sys
def csum(b):
    b += b'\\0' * (len(b) % 2)
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff
def ip(src, dst, proto, payload):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload
src, dst, isrc, idst, sport, dport = sys.argv[1:7]
inner = ip(isrc, idst, 17, struct.pack('!HHHH', int(sport), int(dport), 8, 0))
icmp = struct.pack('!BBHI', 3, 3, 0, 0) + inner
icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip(src, dst, 1, icmp), (dst, 0))
`;

/**
 * Send a forged ICMP port-unreachable from `src` to `dst` about the UDP packet innerSrc:sport -> innerDst:dport
 * (as a hostile guest would, to have conntrack mark it RELATED to someone else's flow). Needs python3.
 */
export function sendIcmpError(
  ns: string | undefined,
  p: { src: string; dst: string; innerSrc: string; innerDst: string; sport: number; dport: number },
): Promise<void> {
  const argv = ['python3', '-c', ICMP_ERROR, p.src, p.dst, p.innerSrc, p.innerDst, String(p.sport), String(p.dport)];
  const [cmd, args] = ns ? ['ip', ['netns', 'exec', ns, ...argv]] : [argv[0]!, argv.slice(1)];
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`icmp sender exited ${code}: ${err.trim()}`))));
  });
}

/** What a program run in a client namespace did; stdout as bytes (bodies are compared byte-exact). */
export interface NsExecResult { code: number | null; stdout: Buffer; stderr: string }

/**
 * A client network namespace behind the host (a test client, or another network the host routes to): a veth pair
 * `hostIf` (on the host, `hostAddr`/30) <-> eth0 (in `name`, `addr`/30), with its default route via the host.
 */
export interface ClientNetns {
  readonly name: string;
  readonly hostIf: string;
  readonly hostAddr: string;
  readonly addr: string;
  /** Add the namespace, the link and the route. */
  create(): Promise<void>;
  /** Delete the link and the namespace (safe after a partial or no create()). */
  remove(): Promise<void>;
  /** Run a program in the namespace; SIGKILLed after timeoutMs. */
  exec(cmd: string, args: string[], timeoutMs?: number): Promise<NsExecResult>;
  /** tcpdump on eth0 into `file`: every TCP RST whose source is `fromAddr` (kill the process to end it). */
  captureRsts(fromAddr: string, file: string): ChildProcess;
  /** tcpdump on eth0 into `file`: every TCP FIN or RST to or from `addr`, in order (to tell an RST that answers a
   *  client which had already closed its side from one the client could still see). */
  captureCloses(addr: string, file: string): ChildProcess;
}

/** A long transfer (200 MiB through a loaded host) still ends well within this. */
const NS_EXEC_TIMEOUT_MS = 120_000;

export function clientNetns(p: { name: string; hostIf: string; hostAddr: string; addr: string }): ClientNetns {
  const { name, hostIf, hostAddr, addr } = p;
  const tcpdump = (filter: string, file: string): ChildProcess => {
    const c = spawn('ip', ['netns', 'exec', name, 'tcpdump', '-l', '-n', '-i', 'eth0', filter], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    c.stdout.pipe(createWriteStream(file));
    return c;
  };
  return {
    ...p,
    async create() {
      await run('ip', ['netns', 'add', name]);
      await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
      await run('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
      await run('ip', ['link', 'set', hostIf, 'up']);
      await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', name, 'addr', 'add', `${addr}/30`, 'dev', 'eth0']);
      await run('ip', ['-n', name, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['-n', name, 'route', 'add', 'default', 'via', hostAddr]);
    },
    async remove() {
      await runRaw('ip', ['link', 'delete', hostIf]);
      await runRaw('ip', ['netns', 'delete', name]);
    },
    exec: (cmd, args, timeoutMs = NS_EXEC_TIMEOUT_MS) =>
      new Promise((res) => {
        const c = spawn('ip', ['netns', 'exec', name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        let err = '';
        c.stdout.on('data', (d: Buffer) => out.push(d));
        c.stderr.on('data', (d: Buffer) => {
          err += d.toString();
        });
        const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
        c.on('close', (code) => {
          clearTimeout(timer);
          res({ code, stdout: Buffer.concat(out), stderr: err });
        });
      }),
    captureRsts(fromAddr, file) {
      return tcpdump(`src host ${fromAddr} and tcp[tcpflags] & tcp-rst != 0`, file);
    },
    captureCloses(addr, file) {
      return tcpdump(`host ${addr} and tcp[tcpflags] & (tcp-rst|tcp-fin) != 0`, file);
    },
  };
}
