// Network namespaces and veth pairs with iproute2: a guest gets its own netns, a veth pair with one end in
// the host namespace (hostAddr) and one inside (guestAddr), and a default route via the host end.
import { existsSync } from 'node:fs';
import { access, readFile, writeFile } from 'node:fs/promises';
import { HylicsError } from '../core/errors/index.js';
import { run, runRaw } from './exec.js';

export const NETNS_DIR = '/run/netns';

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

const IFNAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/; // IFNAMSIZ 16 including NUL
const NETNS_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

function check(re: RegExp, value: string, what: string): void {
  if (!re.test(value)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `invalid ${what} ${JSON.stringify(value)}`, { what, value });
}

export async function netnsExists(name: string): Promise<boolean> {
  try { await access(netnsPath(name)); return true; } catch { return false; }
}

export async function listNetns(): Promise<string[]> {
  const r = await runRaw('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

export async function createNetns(name: string): Promise<void> {
  check(NETNS_RE, name, 'netns name');
  await run('ip', ['netns', 'add', name]);
}

/** Name the network namespace of process `pid` (`ip netns attach`: a bind mount at /run/netns/NAME), e.g. one a
 * container runtime created inside the guest's user namespace. */
export async function attachNetns(name: string, pid: number): Promise<void> {
  check(NETNS_RE, name, 'netns name');
  await run('ip', ['netns', 'attach', name, String(pid)]);
}

/** Delete a netns; missing is fine. Processes still inside keep it alive until they exit. */
export async function deleteNetns(name: string): Promise<void> {
  check(NETNS_RE, name, 'netns name');
  if (!(await netnsExists(name))) return;
  const r = await runRaw('ip', ['netns', 'delete', name]);
  if (r.code !== 0 && (await netnsExists(name))) await run('ip', ['netns', 'delete', name]);
}

/** Is interface `ifname` present in the host namespace? A synchronous look at /sys/class/net (no `ip` spawned). */
export function hostLinkPresent(ifname: string): boolean {
  return existsSync(`/sys/class/net/${ifname}`);
}

/** Does interface `ifname` exist in the host namespace (or in `netns`)? */
export async function linkExists(ifname: string, netns?: string): Promise<boolean> {
  const args = netns ? ['-n', netns, 'link', 'show', 'dev', ifname] : ['link', 'show', 'dev', ifname];
  return (await runRaw('ip', args)).code === 0;
}

export async function deleteLink(ifname: string, netns?: string): Promise<void> {
  if (!(await linkExists(ifname, netns))) return;
  await run('ip', netns ? ['-n', netns, 'link', 'delete', 'dev', ifname] : ['link', 'delete', 'dev', ifname]);
}

export interface VethSpec {
  netns: string;
  hostIf: string;
  guestIf: string;
  hostAddr: string;
  guestAddr: string;
  prefixLen: number;
}

/**
 * Create the veth pair (guest end moved into `netns` at creation), address both ends, bring them and the
 * netns' lo up, and route the guest's default traffic via the host end. The netns must exist.
 */
export async function createVeth(s: VethSpec): Promise<void> {
  check(IFNAME_RE, s.hostIf, 'host interface name');
  check(IFNAME_RE, s.guestIf, 'guest interface name');
  check(NETNS_RE, s.netns, 'netns name');
  await run('ip', ['link', 'add', s.hostIf, 'type', 'veth', 'peer', 'name', s.guestIf, 'netns', s.netns]);
  await run('ip', ['addr', 'add', `${s.hostAddr}/${s.prefixLen}`, 'dev', s.hostIf]);
  await run('ip', ['link', 'set', s.hostIf, 'up']);
  await run('ip', ['-n', s.netns, 'link', 'set', 'lo', 'up']);
  await run('ip', ['-n', s.netns, 'addr', 'add', `${s.guestAddr}/${s.prefixLen}`, 'dev', s.guestIf]);
  await run('ip', ['-n', s.netns, 'link', 'set', s.guestIf, 'up']);
  await run('ip', ['-n', s.netns, 'route', 'add', 'default', 'via', s.hostAddr]);
}

/** Let the host route between guests' veths and its other interfaces (global sysctl net.ipv4.ip_forward). */
export async function enableIpForward(): Promise<void> {
  const f = '/proc/sys/net/ipv4/ip_forward';
  if ((await readFile(f, 'utf8')).trim() !== '1') await writeFile(f, '1');
}

/** Addresses on an interface (host ns or `netns`), "a.b.c.d/len". */
export async function addressesOf(ifname: string, netns?: string): Promise<string[]> {
  const r = await run('ip', [...(netns ? ['-n', netns] : []), '-j', 'addr', 'show', 'dev', ifname]);
  const j = JSON.parse(r.stdout) as Array<{ addr_info?: Array<{ family: string; local: string; prefixlen: number }> }>;
  return j.flatMap((x) => (x.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`));
}
