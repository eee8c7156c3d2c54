// A hostile guest's control-channel flooder (issue #12 item 4): it says a proper hello, then writes valid
// task.report requests (batches of task-end events, as the agent sends) as fast as the socket takes them, never
// waiting for replies, and reconnects whenever it is cut off (also taking the channel from the agent, which is
// what a root guest can do). Runs as its own process, in a guest or beside a ChannelServer:
//   node dist/test/helpers/channel-flooder.js --socket /run/hylics/channel.sock --seconds 20 [--out FILE]
// Prints (and writes to --out) JSON: bytes and frames written, connections made and how each ended.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { encodeFrame, FrameType } from '../../src/core/protocol/index.js';
import { ChannelPeer, connectUnix } from '../../src/os/channel/index.js';

export interface FloodResult {
  bytes: number;
  frames: number;
  connections: number;
  /**
   * How connections ended, counted: the close reason's code, 'refused' (closed before any hello was answered), 'time'.
   */
  ends: Record<string, number>;
  seconds: number;
}

/** argv (node binary first) that runs this flooder as a process. */
export function flooderArgv(args: string[]): string[] {
  const self = fileURLToPath(import.meta.url);
  return self.endsWith('.ts') ? [process.execPath, '--import', 'tsx', self, ...args] : [process.execPath, self, ...args];
}

const EVENTS_PER_FRAME = 200;

function end(r: FloodResult, how: string): void {
  r.ends[how] = (r.ends[how] ?? 0) + 1;
}

/** One task.report payload, encoded once: each frame only differs in its request id (so no reply is cached). */
const PAYLOAD = (() => {
  const now = Date.now();
  const events = Array.from({ length: EVENTS_PER_FRAME }, (_, i) => ({ kind: 'end' as const, name: 'flood', id: `f${i}`, startMs: now - 5, endMs: now, responseMs: 5, ok: true }));
  return new TextEncoder().encode(JSON.stringify({ op: 'task.report', params: { events }, deadlineMs: 60_000 }));
})();

function reportFrame(id: number): Uint8Array {
  return encodeFrame({ id, type: FrameType.REQUEST, payload: PAYLOAD });
}

async function floodOnce(path: string, until: number, r: FloodResult): Promise<void> {
  let s: Socket;
  try {
    s = await connectUnix(path, 2000);
  } catch (e) {
    end(r, `connect:${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    await new Promise((res) => setTimeout(res, 200));
    return;
  }
  r.connections++;
  s.on('error', () => {});
  const peer = new ChannelPeer(s, { role: 'agent', name: 'flooder', helloTimeoutMs: 3000 });
  const closed = new Promise<string>((res) => peer.once('close', (err?: { code?: string }) => res(err?.code ?? 'closed')));
  const ready = await Promise.race([peer.ready.then(() => true, () => false), closed.then(() => false)]);
  if (!ready) {
    end(r, 'refused');
    peer.close();
    await new Promise((res) => setTimeout(res, 50));
    return;
  }
  let id = 1_000_000;
  let open = true;
  void closed.then(() => { open = false; });
  while (open && Date.now() < until) {
    const f = reportFrame(id++);
    r.frames++;
    r.bytes += f.length;
    if (!s.write(f)) {
      // the daemon paused reading: wait until it drains (or the connection ends, or time is up)
      await Promise.race([new Promise((res) => s.once('drain', res)), closed, new Promise((res) => setTimeout(res, Math.max(0, until - Date.now())))]);
    }
  }
  end(r, open ? 'time' : await closed);
  peer.close();
}

async function main(): Promise<void> {
  const arg = (n: string, d?: string): string | undefined => { const i = process.argv.indexOf(`--${n}`); return i > 0 ? process.argv[i + 1] : d; };
  const path = arg('socket');
  if (!path) throw new Error('--socket PATH required');
  const seconds = Number(arg('seconds', '10'));
  const t0 = Date.now();
  const until = t0 + seconds * 1000;
  const r: FloodResult = { bytes: 0, frames: 0, connections: 0, ends: {}, seconds: 0 };
  while (Date.now() < until) await floodOnce(path, until, r);
  r.seconds = (Date.now() - t0) / 1000;
  const out = JSON.stringify(r);
  const file = arg('out');
  if (file) writeFileSync(file, out + '\n');
  process.stdout.write(out + '\n');
  process.exit(0);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
