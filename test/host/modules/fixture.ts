// Test fixture for module offload until sandbox guests exist: two tmpfs shares (the guest's and another guest's),
// a "guest" netns and a "client" netns, each joined to the host by a veth pair, and a ModuleManager on the host.
// Everything is named after the test process (pid) and removed in cleanup(), also after a failure.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { ModuleManager } from '../../../src/host/modules/index.js';
import type { ModuleEvent, ModuleGuest, ModuleManagerOptions } from '../../../src/host/modules/index.js';
import { ENGINE_KINDS, type EngineKind } from '../../../src/host/modules/engine-api.js';
import { findNginx } from '../../../src/host/modules/engine.js';
import { findLighttpd } from '../../../src/host/modules/lighttpd-engine.js';
import { waitUntil } from '../../helpers/proc.js';

/**
 * The module engines the guarantee tests run against (each suite once per engine): those installed; with
 * HYLICS_TEST_MODULE_ENGINE=nginx|lighttpd only that one.
 */
export const TEST_ENGINES: EngineKind[] = ENGINE_KINDS.filter((e) =>
  (e === 'nginx' ? findNginx() : findLighttpd()) !== undefined
  && (process.env.HYLICS_TEST_MODULE_ENGINE === undefined || process.env.HYLICS_TEST_MODULE_ENGINE === e));

export const canRun = (): string | false => {
  if (process.getuid?.() !== 0) return 'needs root (tmpfs mounts, netns, nftables)';
  for (const bin of ['ip', 'nft', 'curl']) {
    try { execFileSync('which', [bin], { stdio: 'ignore' }); } catch { return `needs ${bin}`; }
  }
  return false;
};

export interface Fixture {
  base: string;
  share: string;
  otherShare: string;
  guest: ModuleGuest;
  /** Another guest (no netns of its own): for isolation checks. */
  guestB: ModuleGuest;
  clientNs: string;
  guestNs: string;
  clientAddr: string;
  manager: ModuleManager;
  events: ModuleEvent[];
  cleanup(): Promise<void>;
}

export function sh(cmd: string, args: string[], opts: { ns?: string; timeoutMs?: number; encoding?: 'buffer' } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const [c, a] = opts.ns ? ['ip', ['netns', 'exec', opts.ns, cmd, ...args]] : [cmd, args];
  return new Promise((resolve) => {
    execFile(c, a, { maxBuffer: 256 * 1024 * 1024, timeout: opts.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

let seq = 0;

export async function makeFixture(
  tag: string,
  engine?: EngineKind,
  options: ModuleManagerOptions = {},
): Promise<Fixture> {
  const pid = process.pid;
  const n = seq++;
  const id = `${tag}${pid % 100000}${n}`.slice(0, 10);
  const o2 = 100 + ((pid * 7 + n * 13) % 150);
  const base = `/tmp/hylics-mod-${tag}-${pid}-${n}`;
  const share = `${base}/share`;
  const otherShare = `${base}/other`;
  const clientNs = `hmc-${id}`;
  const guestNs = `hmg-${id}`;
  const vc = `vc${id}`.slice(0, 15);
  const vg = `vg${id}`.slice(0, 15);
  const cleanups: Array<() => void | Promise<void>> = [];
  const run = (c: string, a: string[]): void => { execFileSync(c, a, { stdio: ['ignore', 'ignore', 'pipe'] }); };
  const manager = new ModuleManager({ log: () => {}, ...(engine ? { engine } : {}), ...options });
  const events: ModuleEvent[] = [];
  manager.on('event', (e) => events.push(e));
  const fx: Fixture = {
    base, share, otherShare, clientNs, guestNs,
    clientAddr: `10.${o2}.1.2`,
    guest: { name: `g${id}`, sharePath: share, guestAddr: `10.${o2}.2.2`, hostAddr: `10.${o2}.2.1`, netns: guestNs },
    guestB: { name: `b${id}`, sharePath: otherShare, guestAddr: `10.${o2}.3.2`, hostAddr: `10.${o2}.2.1` },
    manager, events,
    async cleanup() {
      await manager.close().catch(() => {});
      for (const f of cleanups.reverse()) { try { await f(); } catch { /* best effort, keep going */ } }
    },
  };
  try {
    mkdirSync(share, { recursive: true });
    mkdirSync(otherShare, { recursive: true });
    cleanups.push(() => rmSync(base, { recursive: true, force: true }));
    for (const dir of [share, otherShare]) {
      run('mount', ['-t', 'tmpfs', '-o', 'size=512m,mode=0755', 'tmpfs', dir]);
      cleanups.push(() => run('umount', ['-l', dir]));
    }
    for (const [ns, veth, net] of [[clientNs, vc, 1], [guestNs, vg, 2]] as const) {
      run('ip', ['netns', 'add', ns]);
      cleanups.push(() => run('ip', ['netns', 'del', ns]));
      run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      cleanups.push(() => { try { run('ip', ['link', 'del', veth]); } catch { /* gone with the netns */ } });
      run('ip', ['addr', 'add', `10.${o2}.${net}.1/24`, 'dev', veth]);
      run('ip', ['link', 'set', veth, 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `10.${o2}.${net}.2/24`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', ns, 'route', 'add', 'default', 'via', `10.${o2}.${net}.1`]);
    }
  } catch (e) {
    await fx.cleanup();
    throw e;
  }
  return fx;
}

/** curl from the client netns (or from the host when ns is undefined). */
export function curl(
  ns: string | undefined,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return sh('curl', ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), ...args], {
    ...(ns ? { ns } : {}),
    timeoutMs: timeoutMs + 5000,
  });
}

export async function waitFor(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  await waitUntil(what, fn, timeoutMs, 100);
}
