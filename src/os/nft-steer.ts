// Flow steering for socket offload (docs/offload-socket.md): one nftables table per guest and daemon,
// `ip hylics_sock_<daemon tag>_<guest>`,
// with three sets of flows (guestAddr . guestPort . clientAddr . clientPort):
//   hold   no packet of the flow passes, either way: the guest's socket is frozen and being moved (CRIU locks a
//          connection the same way while it dumps it); clients retransmit what was dropped.
//   steer  the client's packets get the fwmark STEER_MARK, which policy routing (`ip rule fwmark M lookup T`,
//          `local 0.0.0.0/0 dev lo` in table T) delivers to the host's own stack, where the restored
//          IP_TRANSPARENT socket takes them; the guest's packets of the flow are dropped (its socket is frozen).
//   back   (dynamic) a held hand-back: the client's packets are dropped until the guest's thawed socket sends its
//          window probe (no payload), which deletes the element in the packet path; other guest packets dropped.
//          Its elements expire after BACK_HOLD_MAX_S, so no set change is needed to end a hold the probe missed.
// Chains at priority mangle (-150): after conntrack, before routing. `pre` sees clients on other links, `out`
// (type route: a mark change re-routes) clients on the host itself. The rules never change; only the sets do,
// one `nft -f -` transaction per change, so a flow moves from hold to steer atomically.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { isIPv4 } from 'node:net';
import { HylicsError } from '../core/errors/index.js';
import { KeyedSerial } from '../core/serial.js';
import { run, runRaw, spawnError } from './exec.js';
import { onLines } from './lines.js';
import { nativeAddon } from './native.js';
import { nft } from './nft.js';
import { FROZEN_DSCP } from './tcp-repair.js';

/**
 * Longest a flow stays in `back` (the set's element timeout, seconds): a held hand-back normally ends in the packet
 * path within milliseconds (the guest's window probe deletes the element); should the probe not come (a guest that
 * died or could not restore), the hold ends by itself, so ending it needs no set change (no netlink commit, no
 * release round trip). Far above a hand-back's relay and restore (p99 tens of ms, 600 ms seen at load ~20); a
 * client segment dropped meanwhile comes again.
 */
export const BACK_HOLD_MAX_S = 5;

/** fwmark of steered packets and the routing table (and ip rule priority) that delivers them locally ("HY"). */
export const STEER_MARK = 0x4859;
export const STEER_ROUTE_TABLE = 18521;

export interface Flow {
  guestAddr: string;
  guestPort: number;
  clientAddr: string;
  clientPort: number;
}

/** Table names: `hylics_sock_<tag>_<guest>`, `tag` the daemon's id as in module tables (moduleTableName). */
const PREFIX = 'hylics_sock_';

/**
 * The guest's steering table. `tag` is the daemon's id (a hash of its state dir, as for module tables): tables are
 * host-wide and guest names only unique per daemon, so two daemons' same-named guests must not share (and replace)
 * one table. Without a tag (tests): `hylics_sock_<guest>`.
 */
export function steerTableName(guest: string, tag = ''): string {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(guest)) throw new HylicsError('HYLICS_ERR_INVALID_NAME', `invalid guest name ${JSON.stringify(guest)}`, { name: guest });
  if (tag !== '' && !/^[a-z0-9]{1,16}$/.test(tag)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `invalid nft table tag ${JSON.stringify(tag)}`, { tag });
  return `${PREFIX}${tag === '' ? '' : `${tag}_`}${guest.replace(/-/g, '_')}`;
}

function element(f: Flow): string {
  for (const a of [f.guestAddr, f.clientAddr]) if (!isIPv4(a)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `not an IPv4 address: ${JSON.stringify(a)}`);
  for (const p of [f.guestPort, f.clientPort]) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `not a port: ${p}`);
  return `${f.guestAddr} . ${f.guestPort} . ${f.clientAddr} . ${f.clientPort}`;
}

/** A TCP segment without payload and without options other than timestamps (IP header without options): what a
 *  thawed socket's window probe is. nft 1.0.6 mis-lists a concatenation with `tcp doff`, so one rule per size. */
const BARE_ACK = ['ip hdrlength 5 tcp doff 5 ip length 40', 'ip hdrlength 5 tcp doff 8 ip length 52'] as const;

/** The whole table, replaced in one transaction (a leftover of a dead daemon goes with it). With `guestAddr`, the
 *  packets of frozen sockets with that local address (FROZEN_DSCP: the guest's, coming in on its link, and the host's
 *  own frozen copies, going out) are dropped, and packets neither from nor to it pass at the chains' first rule. */
export function renderSteerTable(guest: string, tag = '', guestAddr?: string): string {
  const t = `ip ${steerTableName(guest, tag)}`;
  if (guestAddr !== undefined && !isIPv4(guestAddr)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `not an IPv4 address: ${JSON.stringify(guestAddr)}`);
  // a frozen socket sends nothing (docs/offload-socket.md, "Frozen sockets send nothing"): its loss probe,
  // retransmissions or delayed ACK would carry a newer TCP timestamp than the state restored on the other end
  const frozen = guestAddr === undefined ? [] : [`    ip saddr ${guestAddr} ip dscp ${FROZEN_DSCP} counter drop`];
  // every rule below is about packets to or from the guest's address (the sets' flows are all on it: the host checks
  // a handoff's local address, and the table is made again when the address changes), so any other packet leaves
  // at once: the host has a table per connected guest, and each packet would otherwise meet eight set lookups in
  // each of them
  const others = guestAddr === undefined ? [] : [`    ip saddr != ${guestAddr} ip daddr != ${guestAddr} accept`];
  const key = 'type ipv4_addr . inet_service . ipv4_addr . inet_service;';
  const toGuest = 'ip daddr . tcp dport . ip saddr . tcp sport'; // a client's packet, as guest . client
  const fromGuest = 'ip saddr . tcp sport . ip daddr . tcp dport'; // a guest's packet, as guest . client
  // a client's packets, in prerouting (another host or namespace) and in output (a client on the host itself): the
  // hot path first, a steered flow's packets (every ACK of a host send) are marked and leave the chain after one set
  // lookup; the sets are disjoint (a flow is in one at a time), so the order of these rules does not change a verdict
  const fromClient = [
    `    meta l4proto tcp ${toGuest} @steer meta mark set ${STEER_MARK} accept`,
    `    meta l4proto tcp ${toGuest} @hold drop`,
    `    meta l4proto tcp ${toGuest} @back drop`,
  ];
  return [
    `table ${t} {}`,
    `delete table ${t}`,
    `table ${t} {`,
    `  set hold { ${key} }`,
    `  set steer { ${key} }`,
    // a held hand-back: the client's packets are dropped until the guest's first packet of the flow (its thawed
    // socket's window probe) deletes the element, or the guest's release does, or it expires (BACK_HOLD_MAX_S)
    `  set back { ${key} flags dynamic,timeout; timeout ${BACK_HOLD_MAX_S}s; }`,
    '  chain pre {',
    '    type filter hook prerouting priority mangle; policy accept;',
    ...others,
    // first (they used to walk all nine rules: eight lookups before the mark)
    ...fromClient,
    // the guest's packets come in on its link; on lo they are the host's own socket's, looped back to a client on
    // the host itself (its replies pass prerouting too: dropping them stalled such clients)
    '    iif lo accept',
    ...frozen,
    `    meta l4proto tcp ${fromGuest} @hold drop`,
    `    meta l4proto tcp ${fromGuest} @steer drop`,
    // only a packet without payload ends the hold: the thaw's window probe (a bare ACK: TCP header of 20 bytes, or
    // 32 with timestamps); the guest's frozen socket still runs its timers and retransmits the bytes it froze with
    // unacknowledged (RTO, 200 ms+), and such a stale segment must not end the hold while the guest swaps sockets
    `    meta l4proto tcp ${fromGuest} @back ${BARE_ACK[0]} delete @back { ${fromGuest} }`,
    `    meta l4proto tcp ${fromGuest} @back ${BARE_ACK[1]} delete @back { ${fromGuest} }`,
    `    meta l4proto tcp ${fromGuest} @back drop`,
    '  }',
    '  chain out {',
    '    type route hook output priority mangle; policy accept;',
    ...others,
    ...fromClient,
    ...frozen,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Create (or replace: all flows in it are dropped) the guest's steering table. */
export async function createSteerTable(guest: string, tag = '', guestAddr?: string): Promise<void> {
  await nft(['-f', '-'], renderSteerTable(guest, tag, guestAddr));
}

/** Delete the guest's steering table; no error when it is not there. */
export async function removeSteerTable(guest: string, tag = ''): Promise<void> {
  const t = `ip ${steerTableName(guest, tag)}`;
  await nft(['-f', '-'], `table ${t} {}\ndelete table ${t}\n`);
}

/** hold: dropped both ways; steer: delivered to the host; back: a held hand-back (client's packets dropped until
 *  the guest's first packet of the flow without payload deletes the element). */
export type SteerSet = 'hold' | 'steer' | 'back';
const SETS: readonly SteerSet[] = ['hold', 'steer', 'back'];

/**
 * One long-lived `nft -e -i` for the per-handoff set changes: a process spawn costs 0.2-0.3 s on a loaded 2-core
 * host, a line to a running nft well under a millisecond. Each line is one transaction; nft answers a committed one
 * with "# new generation N" on stdout (-e) and a failed one with "Error: ..." on stderr. Lines go one at a time.
 * stdbuf makes nft's stdout line-buffered (it is a pipe). The process is respawned when it dies.
 */
class NftSession {
  private proc: ChildProcess | undefined;
  private readonly queue: Array<{ line: string; resolve: () => void; reject: (e: Error) => void }> = [];
  private current: { line: string; resolve: () => void; reject: (e: Error) => void } | undefined;

  run(line: string): Promise<void> {
    if (line.includes('\n')) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'one nft line per transaction');
    return new Promise((resolve, reject) => { this.queue.push({ line, resolve, reject }); this.next(); });
  }

  private start(): ChildProcess {
    const p = spawn('stdbuf', ['-oL', '-eL', 'nft', '-e', '-i'], { stdio: ['pipe', 'pipe', 'pipe'] });
    p.unref();
    (p.stdin as unknown as { unref?: () => void }).unref?.();
    (p.stdout as unknown as { unref?: () => void }).unref?.();
    (p.stderr as unknown as { unref?: () => void }).unref?.();
    onLines(p.stdout!, (l) => {
      if (l.startsWith('# new generation')) this.settle();
    });
    onLines(p.stderr!, (l) => {
      if (l.startsWith('Error:')) this.settle(new HylicsError('HYLICS_ERR_NFT_FAILED', `nft ${this.current?.line ?? ''}: ${l}`, { line: this.current?.line }));
    });
    const died = (): void => {
      if (this.proc === p) this.proc = undefined;
      this.settle(new HylicsError('HYLICS_ERR_NFT_FAILED', 'nft session ended'));
    };
    p.on('error', died);
    p.on('close', died);
    p.stdin!.on('error', () => undefined);
    return p;
  }

  private settle(e?: Error): void {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    if (e) c.reject(e); else c.resolve();
    this.next();
  }

  private next(): void {
    if (this.current || this.queue.length === 0) return;
    this.current = this.queue.shift()!;
    this.proc ??= this.start();
    this.proc.stdin!.write(`${this.current.line}\n`);
  }

  close(): void {
    this.proc?.stdin?.end();
    this.proc = undefined;
  }
}

const session = new NftSession();

/** Stop the long-lived nft (daemon shutdown, tests). */
export function closeNftSession(): void {
  session.close();
}

/** A flow as the sets' raw key: guest address . port . client address . port, each field padded to 4 bytes. */
export function flowKey(f: Flow): Buffer {
  element(f); // validates
  return flowKeyOf(f);
}

/** Set changes over the addon's netlink batch (~0.1 ms of CPU, vs 1-3 ms in nft): the default;
 *  HYLICS_OFFLOAD_NETLINK=0 in hylicsd's environment keeps them in the long-lived nft (docs/offload-socket.md). */
const NETLINK = process.env.HYLICS_OFFLOAD_NETLINK !== '0';
/** A set change refused with EBUSY is tried this many times in all, this far apart. */
export const NETLINK_BUSY_ATTEMPTS = 4;
export const NETLINK_BUSY_PAUSE_MS = 2;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Move a flow between sets in one transaction: it ends up in `to` (or in none when null). Leaving a set it is not in
 * is not an error (netlink: destroyed there, DESTROYSETELEM, or on a kernel before 6.3 added first in the same
 * transaction; nft: added first, as nft 1.0.6 has no `destroy element`). Through the addon's netlink batch (tens of
 * microseconds) when enabled, else through the long-lived nft.
 */
export function moveFlow(guest: string, flow: Flow, to: SteerSet | null, tag = ''): Promise<void> {
  // one flow's changes happen in call order: a change retried after EBUSY (a guest's release of handoff N taking the
  // flow out of every set) must not land after a later one (handoff N+1 steering it here), or the client's packets
  // go to the guest's frozen socket for the whole send (the host's send stalls until STALL_MS)
  let table: string;
  let el: string;
  try { table = steerTableName(guest, tag); el = element(flow); } catch (e) { return Promise.reject(e as Error); }
  const k = `${table} ${el}`;
  const { addon } = nativeAddon();
  if (NETLINK && addon && !flowChanges.pending(k)) {
    // the common case (a handoff's steer and hand-back): nothing of this flow in flight, so the change is made
    // here and now, in call order by construction, with no promise chain around a synchronous netlink commit; only
    // an EBUSY goes through the per-flow queue for its retries (later changes of the flow wait behind it)
    const key = flowKeyOf(flow);
    try {
      commitOps(addon.nftSetElems.bind(addon), table, key, to);
      return Promise.resolve();
    } catch (e) {
      const err = e as NetlinkErr;
      if (err.errno !== 'EBUSY') return Promise.reject(netlinkError(table, el, to, err, 1));
      return flowChanges.run(k, async () => {
        await sleep(NETLINK_BUSY_PAUSE_MS);
        return netlinkMove(addon.nftSetElems.bind(addon), table, el, key, to, 2);
      });
    }
  }
  return flowChanges.run(k, () => moveFlowNow(guest, flow, to, tag));
}
/** Set changes per flow (table and element), in call order. */
const flowChanges = new KeyedSerial<string>();

/**
 * The addon's batch moving `key` to `to`: added to `to`, destroyed in the others (DESTROYSETELEM, Linux >= 6.3: no
 * error when it is not there), 3 messages and one insert; on an older kernel (the batch refused with EINVAL, once
 * per process) added to every set (so each delete finds it) and deleted from the others, 5 messages and 3 inserts.
 */
type SetOp = { set: string; add: boolean; key: Buffer; destroy?: boolean };
function setOps(key: Buffer, to: SteerSet | null): SetOp[] {
  const ops: SetOp[] = [];
  for (const set of SETS) {
    if (set === to) ops.push({ set, add: true, key });
    else if (destroyElems) ops.push({ set, add: false, key, destroy: true });
    else ops.push({ set, add: true, key }, { set, add: false, key });
  }
  return ops;
}
/** The kernel takes DESTROYSETELEM (cleared at the first batch refused with EINVAL that used it). */
let destroyElems = true;

/** One batch; a kernel without DESTROYSETELEM refuses it with EINVAL as a whole (nothing changed): the add + delete
 *  form from then on, once that form went through (an EINVAL it shares was not about DESTROYSETELEM: thrown, the
 *  process keeps the faster form), said once on the process's warning channel (the daemon's log). */
function commitOps(
  commit: (table: string, ops: SetOp[]) => void, table: string, key: Buffer, to: SteerSet | null,
): void {
  const ops = setOps(key, to);
  try { commit(table, ops); } catch (e) {
    if ((e as NetlinkErr).errno !== 'EINVAL' || !ops.some((o) => o.destroy)) throw e;
    destroyElems = false;
    try { commit(table, setOps(key, to)); } catch (e2) { destroyElems = true; throw e2; }
    process.emitWarning('nftables refused DESTROYSETELEM (EINVAL: Linux < 6.3?): steering set moves use add + delete from now on', { code: 'HYLICS_NFT_NO_DESTROYSETELEM' });
  }
}

/** flowKey without validating again (the caller has: element()). */
function flowKeyOf(f: Flow): Buffer {
  const k = Buffer.alloc(16);
  const addr = (a: string, at: number): void => { a.split('.').forEach((o, i) => { k[at + i] = Number(o); }); };
  addr(f.guestAddr, 0);
  k.writeUInt16BE(f.guestPort, 4);
  addr(f.clientAddr, 8);
  k.writeUInt16BE(f.clientPort, 12);
  return k;
}

type NetlinkErr = { message?: string; errno?: string };
function netlinkError(table: string, el: string, to: SteerSet | null, err: NetlinkErr, attempts: number): HylicsError {
  const what = `nft set elements of ${table} (${el} -> ${to ?? 'none'})`;
  return new HylicsError('HYLICS_ERR_NFT_FAILED', `${what}: ${err.message ?? 'failed'}`, { errno: err.errno, attempts });
}

/** The netlink batch, tried again after EBUSY (NETLINK_BUSY_ATTEMPTS in all, counting from `attempt`). */
async function netlinkMove(
  commit: (table: string, ops: SetOp[]) => void,
  table: string, el: string, key: Buffer, to: SteerSet | null, attempt: number,
): Promise<void> {
  for (; ; attempt++) {
    try { commitOps(commit, table, key, to); return; } catch (e) {
      const err = e as NetlinkErr;
      // EBUSY (seen under load in about 1 of 1000 keep-alive handoffs; likely the key the packet path had just
      // deleted from the dynamic `back` set on the guest's first packet after a held hand-back, not yet freed):
      // the batch was aborted as a whole, so it is simply tried again
      if (err.errno === 'EBUSY' && attempt < NETLINK_BUSY_ATTEMPTS) { await sleep(NETLINK_BUSY_PAUSE_MS); continue; }
      throw netlinkError(table, el, to, err, attempt);
    }
  }
}

async function moveFlowNow(guest: string, flow: Flow, to: SteerSet | null, tag: string): Promise<void> {
  const table = steerTableName(guest, tag);
  const { addon } = nativeAddon();
  if (NETLINK && addon) {
    return netlinkMove(addon.nftSetElems.bind(addon), table, element(flow), flowKeyOf(flow), to, 1);
  }
  const t = `ip ${table}`;
  const e = `{ ${element(flow)} }`;
  const cmds: string[] = [];
  for (const s of SETS) {
    if (s === to) cmds.push(`add element ${t} ${s} ${e}`);
    else cmds.push(`add element ${t} ${s} ${e}`, `delete element ${t} ${s} ${e}`);
  }
  await session.run(cmds.join('; '));
}

/** A set element in nft's JSON: the key, or with a timeout (`back`) { elem: { val: key, timeout, expires } }. */
type Elem = { concat?: unknown[]; elem?: { val?: { concat?: unknown[] } } };

/** Flows in each set of the guest's table (empty when there is no table): tests and leak checks. */
export async function listSteerFlows(guest: string, tag = ''): Promise<Record<SteerSet, string[]>> {
  const out: Record<SteerSet, string[]> = { hold: [], steer: [], back: [] };
  let text: string;
  try {
    text = await nft(['-j', 'list', 'table', 'ip', steerTableName(guest, tag)]);
  } catch { return out; }
  const items = (
    JSON.parse(text) as {
      nftables: Array<{ set?: { name: string; elem?: Elem[] } }>;
    }
  ).nftables;
  for (const it of items) {
    if (!it.set || !(SETS as readonly string[]).includes(it.set.name)) continue;
    // an element with a timeout (`back`) is listed as { elem: { val, timeout, expires } }
    out[it.set.name as SteerSet] = (it.set.elem ?? []).map((e) => (e.concat ?? e.elem?.val?.concat ?? []).join(' . '));
  }
  return out;
}

/** Packets of frozen sockets the guest's table dropped (its FROZEN_DSCP rules' counters, both chains; 0 without a
 *  table or those rules): diagnostics and tests. */
export async function frozenDropped(guest: string, tag = ''): Promise<number> {
  let text: string;
  try {
    text = await nft(['-j', 'list', 'table', 'ip', steerTableName(guest, tag)]);
  } catch { return 0; }
  let n = 0;
  type Item = { rule?: { expr?: Array<{ counter?: { packets?: number } }> } };
  for (const it of (JSON.parse(text) as { nftables: Item[] }).nftables)
    for (const e of it.rule?.expr ?? []) n += e.counter?.packets ?? 0;
  return n;
}

/** Every steering table on the host (`ip hylics_sock_*`), any daemon's. */
export async function listSteerTables(): Promise<string[]> {
  const out = await nft(['list', 'tables', 'ip']);
  return [...out.matchAll(/^table ip (hylics_sock_[a-z0-9_]+)$/gm)].map((m) => m[1]!);
}

/** Guest names that have a steering table of the daemon tagged `tag` (`ip hylics_sock_<tag>_*`). */
export async function listSteerTableGuests(tag: string): Promise<string[]> {
  const prefix = steerTableName('x', tag).slice(0, -1);
  return (await listSteerTables()).filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length).replace(/_/g, '-'));
}

/**
 * Host-wide lock around the check-and-act sequences on the shared policy routing (one lock file for every daemon on
 * the host): "ensure the rule, create my table" and "no table left, so remove the rule". Without it a daemon that had
 * just ensured the rule could create its table right after another daemon listed none and then deleted the rule,
 * leaving the first one's steering without its route for good.
 */
export const STEER_LOCK_PATH = '/run/hylics/steer.lock';
/** Longest wait for the steering lock (another daemon holds it across a few `ip` and `nft` commands). */
export const STEER_LOCK_WAIT_S = 30;

/**
 * Run `fn` holding the steering lock: an exclusive flock(2) on STEER_LOCK_PATH, held by a `flock` child process
 * (Node has no flock) until `fn` settles; the child ends on its stdin's EOF, so a daemon killed meanwhile releases
 * the lock with its pipe. Not reentrant (a nested call waits for itself until STEER_LOCK_WAIT_S).
 */
export async function withSteerLock<T>(fn: () => Promise<T>, path = STEER_LOCK_PATH): Promise<T> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const args = ['-x', '-w', String(STEER_LOCK_WAIT_S), path, 'sh', '-c', 'echo locked; exec cat >/dev/null'];
  const child = spawn('flock', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number | null>((resolve) => { child.on('close', (code) => resolve(code)); });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    onLines(child.stdout, (l) => { if (l === 'locked') resolve(); });
    child.on('error', (e) => reject(spawnError(e, 'flock', args)));
    void exited.then((code) => reject(new HylicsError('HYLICS_ERR_OS_COMMAND_FAILED', `flock ${path}: exit ${code}: ${stderr.trim() || 'lock not taken'}`, { path, code })));
  });
  try {
    return await fn();
  } finally {
    child.stdin.end();
    await exited;
  }
}

async function ensurePolicyRoutingLocked(): Promise<void> {
  const rules = await run('ip', ['-4', 'rule', 'show', 'table', String(STEER_ROUTE_TABLE)]);
  if (!rules.stdout.includes(`fwmark 0x${STEER_MARK.toString(16)}`)) {
    await run('ip', ['-4', 'rule', 'add', 'fwmark', String(STEER_MARK), 'lookup', String(STEER_ROUTE_TABLE), 'priority', String(STEER_ROUTE_TABLE)]);
  }
  await run('ip', ['-4', 'route', 'replace', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', String(STEER_ROUTE_TABLE)]);
}

/**
 * The policy routing that delivers marked packets locally. Shared by every daemon on the host (same mark, same
 * table): added when missing, never duplicated; removed only when no steering table of anyone is left. Each
 * check-and-act runs under the steering lock (withSteerLock).
 */
export function ensurePolicyRouting(): Promise<void> {
  return withSteerLock(ensurePolicyRoutingLocked);
}

/** The policy routing, then the guest's steering table (created or replaced), under one hold of the steering lock:
 *  no daemon's removal can take the routing away between the two. */
export function ensureSteerTable(guest: string, tag = '', guestAddr?: string): Promise<void> {
  steerTableName(guest, tag); // validates before anything is locked
  return withSteerLock(async () => {
    await ensurePolicyRoutingLocked();
    await createSteerTable(guest, tag, guestAddr);
  });
}

/** Remove the policy routing when no steering table of anyone is left (listed and removed under the steering lock:
 *  a daemon creating its table waits, then adds the routing again). True when it was removed. */
export function removePolicyRoutingIfUnused(): Promise<boolean> {
  return withSteerLock(async () => {
    if ((await listSteerTables().catch(() => ['?'])).length > 0) return false;
    for (;;) {
      const r = await runRaw('ip', ['-4', 'rule', 'del', 'fwmark', String(STEER_MARK), 'lookup', String(STEER_ROUTE_TABLE)]);
      if (r.code !== 0) break;
    }
    await runRaw('ip', ['-4', 'route', 'flush', 'table', String(STEER_ROUTE_TABLE)]);
    return true;
  });
}

/** Is the policy routing in place (for leak checks)? */
export async function policyRoutingPresent(): Promise<boolean> {
  const r = await runRaw('ip', ['-4', 'rule', 'show', 'table', String(STEER_ROUTE_TABLE)]);
  return r.stdout.trim() !== '';
}
