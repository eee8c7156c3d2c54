// The stream gate worker of one guest (daemon side): the process (worker-main.ts) nginx asks, through auth_request,
// before it sends a media segment of a `stream` module. One Gate per guest state of the module manager (manager.ts),
// which owns the policy: when to start it (a stream module starts), when to kill it (the last stream module stops, the
// guest goes to lighttpd or away) and the restart with back-off after it dies (the onExit hook). This file holds the
// process: spawn (as the worker user, fd 4 the guest's share, fd 5 the engine's gate/ directory, in the guest's module
// cgroup), the ready handshake, the request/reply map over IPC, and the kill.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants as fsc, openSync } from 'node:fs';
import { HylicsError } from '../../core/errors/index.js';
import type { Cgroup } from '../../os/cgroup.js';
import { openShareDir } from '../../os/native.js';
import { entryArgv, NODE_BIN } from '../../os/self.js';
import type { FromWorker, ModuleEvent, ModuleGuest, ToWorker } from './types.js';

/** How long the gate may take to say it is ready. */
const GATE_READY_MS = 30_000;
/** How long the gate may take to answer one request (start, stop, probe). */
const GATE_REPLY_MS = 15_000;
/** Between SIGTERM and SIGKILL when the gate is killed. */
const GATE_KILL_MS = 2000;

export interface GateOptions {
  guest: ModuleGuest;
  /** uid/gid the gate drops to. */
  user: { uid: number; gid: number };
  log: (msg: string) => void;
  /** The engine's gate/ directory, where the gate's sockets live (the manager creates the engine first if needed). */
  gateDir: () => Promise<string>;
  /** The guest's module cgroup the gate joins (null: none usable); asked after gateDir(). */
  cgroup: () => Cgroup | null;
  /** The manager's events: the gate's `error` messages become error events. */
  emit: (e: ModuleEvent) => void;
  /** False while the guest's modules are being stopped or the manager closes: an exit then is not reported. */
  supervised: () => boolean;
  /** The gate died on its own (supervised, not killed): the manager restarts it with back-off. */
  onExit: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export type GateProbe = Extract<FromWorker, { op: 'probe' }>;

export class Gate {
  private child: ChildProcess | null = null;
  private ready: Promise<void> | null = null;
  private readonly pending = new Map<string, { resolve: (m: FromWorker) => void }>();
  /** What the gate uses: { loaded, open: 'openat2'|'js-walk', ... } (from its ready message; kept after it stops). */
  native: unknown;

  constructor(private readonly o: GateOptions) {}

  /** A gate process is there (started, starting, or dead but not yet noticed). */
  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Start the gate if needed, and serve stream module `id` (its root, share-relative) with it. */
  async startModule(id: string, root: string): Promise<void> {
    await this.ensure();
    const reply = await this.request({ op: 'start', id, root, socketName: `${id}.sock` }, id);
    if (reply.op === 'failed')
      throw new HylicsError(reply.code as HylicsError['code'], reply.message, { guest: this.o.guest.name, root });
    if (reply.op !== 'started') throw new HylicsError('HYLICS_ERR_MODULE_WORKER', `unexpected gate reply ${reply.op}`);
  }

  /** Stop serving stream module `id` (the gate keeps running for the guest's other stream modules). */
  async stopModule(id: string): Promise<void> {
    await this.request({ op: 'stop', id }, id);
  }

  /** The gate's bounded structures and memory for one stream module. */
  async probe(id: string): Promise<GateProbe> {
    const r = await this.request({ op: 'probe', id }, `probe:${id}`);
    if (r.op !== 'probe') throw new HylicsError('HYLICS_ERR_MODULE_WORKER', `unexpected gate reply ${r.op}`);
    return r;
  }

  /** SIGTERM, then SIGKILL after GATE_KILL_MS; resolves when it has exited. Not reported to onExit. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    this.ready = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), GATE_KILL_MS).unref();
    });
  }

  private async ensure(): Promise<void> {
    if (this.child && this.ready) return this.ready;
    const name = this.o.guest.name;
    const gateDir = await this.o.gateDir();
    const shareFd = openShareDir(this.o.guest.sharePath);
    let gateDirFd: number;
    try {
      gateDirFd = openSync(gateDir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    } catch (e) {
      closeSync(shareFd);
      throw e;
    }
    let child: ChildProcess;
    try {
      child = spawn(NODE_BIN, entryArgv('host/modules/worker-main'), {
        cwd: '/',
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HYLICS_WORKER_UID: String(this.o.user.uid),
          HYLICS_WORKER_GID: String(this.o.user.gid),
          ...(process.env.HYLICS_NATIVE ? { HYLICS_NATIVE: process.env.HYLICS_NATIVE } : {}),
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc', shareFd, gateDirFd],
        serialization: 'json',
      });
    } finally {
      closeSync(shareFd);
      closeSync(gateDirFd);
    }
    this.child = child;
    const cgroup = this.o.cgroup();
    if (cgroup && child.pid)
      await cgroup
        .addProcess(child.pid)
        .catch((e: unknown) => this.o.log(`gate of ${name} not in its cgroup: ${(e as Error).message}`));
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new HylicsError('HYLICS_ERR_MODULE_WORKER', `gate for ${name} did not start within ${GATE_READY_MS} ms`));
        child.kill('SIGKILL');
      }, GATE_READY_MS);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new HylicsError('HYLICS_ERR_MODULE_WORKER', `gate for ${name}: ${e.message}`));
      });
      child.once('exit', () => {
        clearTimeout(timer);
        reject(new HylicsError('HYLICS_ERR_MODULE_WORKER', `gate for ${name} exited while starting`));
      });
      child.on('message', (m: FromWorker) => {
        if (m.op === 'ready') {
          clearTimeout(timer);
          this.native = m.native;
          resolve();
          return;
        }
        this.onMessage(m);
      });
    });
    this.ready.catch(() => {});
    child.on('exit', (code, signal) => this.onChildExit(child, code, signal));
    return this.ready;
  }

  private onMessage(m: FromWorker): void {
    if (m.op === 'started' || m.op === 'failed' || m.op === 'stopped') {
      const p = this.pending.get(m.id);
      if (p) {
        this.pending.delete(m.id);
        p.resolve(m);
      }
    } else if (m.op === 'probe') {
      const p = this.pending.get(`probe:${m.id}`);
      if (p) {
        this.pending.delete(`probe:${m.id}`);
        p.resolve(m);
      }
    } else if (m.op === 'error') {
      this.o.emit({ type: 'error', guest: this.o.guest.name, id: m.id, code: m.code, message: m.message });
    }
  }

  private request(msg: ToWorker, key: string): Promise<FromWorker> {
    const child = this.child;
    const name = this.o.guest.name;
    if (!child || !child.connected)
      return Promise.reject(new HylicsError('HYLICS_ERR_MODULE_WORKER', `no gate for ${name}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new HylicsError('HYLICS_ERR_MODULE_WORKER', `gate for ${name} did not answer ${msg.op} ${msg.id}`));
      }, GATE_REPLY_MS);
      this.pending.set(key, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
      child.send(msg);
    });
  }

  private onChildExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.resolve({ op: 'failed', id, code: 'HYLICS_ERR_MODULE_WORKER', message: 'gate exited' });
    }
    if (this.child !== child || !this.o.supervised()) return;
    this.child = null;
    this.ready = null;
    this.o.onExit(code, signal);
  }
}
