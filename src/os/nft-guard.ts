// The guest firewall: one host-wide nftables table, `inet hylics_guard`, that keeps hostile guests inside their own
// link. Guest links are the host interfaces named hyh<i> (sandbox veth ends and microVM taps alike).
//   pre     (prerouting, priority raw: before conntrack and before the modules' DNAT) drops a packet that comes in
//           on a guest link with a source other than that link's own guest address (set guest_src of
//           ifname . ipv4_addr pairs), and all IPv6 from guest links (guests have none; the veth's link-local
//           address would otherwise reach host services listening on ::).
//   owner   (prerouting, priority mangle: after conntrack, before the modules' DNAT) drops a guest's packet unless
//           its flow is the guest's own: the guest opened it (original source) or answers on it (reply source).
//           conntrack marks an ICMP error RELATED to whatever flow its quoted header names, whoever sends it, so
//           without this a guest could forge errors into another guest's or the host's flows. Untracked and
//           invalid packets from guest links are dropped here too.
//   input   accepts from guest links only replies on flows the host opened (ct direction reply, established or
//           related), drops everything else to the host itself (any host address, also 0.0.0.0 listeners, and
//           flows a guest opened while the guard was not there). Guests talk to hylicsd over a Unix socket,
//           virtio-serial or vsock, never over IP.
//   forward drops everything from one guest link to another (no flow between two guests is legitimate). Anything
//           else (clients elsewhere to guests, module DNAT, guests' egress to other interfaces) is left to the
//           operator's own policy.
// The rules never change; only the set does. The table is shared by every hylicsd on the host (several state
// dirs), so it is never replaced whole: each change is one `nft -f -` transaction that declares the table
// (idempotent), flushes and re-adds the three chains' rules, and adds or deletes set elements. Other daemons'
// elements are untouched, and rules someone flushed come back with the next change.
import { isIPv4 } from 'node:net';
import { HylicsError, toHylicsError } from '../core/errors/index.js';
import { nft } from './nft.js';

export const GUARD_FAMILY = 'inet';
export const GUARD_TABLE = 'hylics_guard';
export const GUARD_SET = 'guest_src';
/** Host-side guest interfaces are `${GUEST_LINK_PREFIX}<index>` (src/host/address-plan.ts). */
export const GUEST_LINK_PREFIX = 'hyh';

/** A guest link and the one source address allowed on it. */
export interface GuestLink {
  ifname: string;
  addr: string;
}

export interface GuardChange {
  add?: GuestLink[];
  remove?: GuestLink[];
}

export interface GuardOptions {
  /** Apply in this network namespace instead of the host's (tests). */
  netns?: string;
}

const LINK_RE = new RegExp(`^${GUEST_LINK_PREFIX}[a-zA-Z0-9_.-]{1,12}$`); // IFNAMSIZ 16 with the NUL

function checkLink(l: GuestLink): GuestLink {
  if (typeof l?.ifname !== 'string' || !LINK_RE.test(l.ifname)) {
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `guest link must be an interface name ${GUEST_LINK_PREFIX}<...> (at most 15 characters), got ${JSON.stringify(l?.ifname)}`, { what: 'ifname', value: l?.ifname });
  }
  if (typeof l.addr !== 'string' || !isIPv4(l.addr)) {
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `guest link address must be an IPv4 address, got ${JSON.stringify(l.addr)}`, { what: 'addr', value: l.addr });
  }
  return l;
}

const T = `${GUARD_FAMILY} ${GUARD_TABLE}`;
/** The chains and how many rules each holds (guardIntact compares). */
const GUARD_RULES: Record<string, number> = { pre: 2, owner: 3, input: 2, forward: 1 };
const GUARD_CHAINS = Object.keys(GUARD_RULES);
const G = `iifname "${GUEST_LINK_PREFIX}*"`;

/** The fixed part: table, set and chains declared, then each chain's rules replaced. */
function rulesScript(): string[] {
  return [
    `table ${T} {`,
    `  set ${GUARD_SET} { type ifname . ipv4_addr; }`,
    '  chain pre { type filter hook prerouting priority raw; policy accept; }',
    '  chain owner { type filter hook prerouting priority mangle; policy accept; }',
    '  chain input { type filter hook input priority filter; policy accept; }',
    '  chain forward { type filter hook forward priority filter; policy accept; }',
    '}',
    ...GUARD_CHAINS.map((c) => `flush chain ${T} ${c}`),
    `table ${T} {`,
    '  chain pre {',
    `    ${G} meta nfproto ipv6 counter drop`,
    `    ${G} iifname . ip saddr != @${GUARD_SET} counter drop`,
    '  }',
    '  chain owner {',
    `    ${G} ct direction original iifname . ct original ip saddr @${GUARD_SET} return`,
    `    ${G} ct direction reply iifname . ct reply ip saddr @${GUARD_SET} return`,
    `    ${G} counter drop`,
    '  }',
    '  chain input {',
    `    ${G} ct direction reply ct state established,related accept`,
    `    ${G} counter drop`,
    '  }',
    '  chain forward {',
    `    ${G} oifname "${GUEST_LINK_PREFIX}*" counter drop`,
    '  }',
    '}',
  ];
}

const elements = (links: GuestLink[]): string => `{ ${links.map((l) => `"${l.ifname}" . ${l.addr}`).join(', ')} }`;

/**
 * The nft script that installs the guard (idempotently) and applies `change` to the set of allowed links, in
 * one transaction. Everything is validated: nothing unchecked reaches nft. Removal of an element that is not
 * there is not an error (it is added first in the same transaction: nft 1.0.6 has no `destroy element`).
 */
export function renderGuardScript(change: GuardChange = {}): string {
  const add = (change.add ?? []).map(checkLink);
  const remove = (change.remove ?? []).map(checkLink);
  const lines = rulesScript();
  if (add.length + remove.length > 0) lines.push(`add element ${T} ${GUARD_SET} ${elements([...add, ...remove])}`);
  if (remove.length > 0) lines.push(`delete element ${T} ${GUARD_SET} ${elements(remove)}`);
  return `${lines.join('\n')}\n`;
}

async function run(args: string[], stdin: string | undefined, opts: GuardOptions): Promise<string> {
  try {
    return await nft(args, stdin, opts);
  } catch (e) {
    const err = toHylicsError(e);
    if (err.code === 'HYLICS_ERR_MISSING_DEPENDENCY') {
      throw new HylicsError(err.code, `${err.message} (the guest firewall needs it; hylics daemon --no-guest-firewall runs without)`, err.details, { cause: err });
    }
    if (err.code !== 'HYLICS_ERR_NFT_FAILED') throw err;
    throw new HylicsError('HYLICS_ERR_GUEST_FIREWALL_FAILED', `the guest firewall (nft table ${T}) could not be updated: ${err.message}`, err.details, { cause: err });
  }
}

/** Install the guard if missing and allow / forget the given links. Atomic; idempotent. */
export async function applyGuard(change: GuardChange = {}, opts: GuardOptions = {}): Promise<void> {
  await run(['-f', '-'], renderGuardScript(change), opts);
}

/** Delete the whole table (every daemon's guests lose their isolation): for tests and operators only. */
export async function removeGuard(opts: GuardOptions = {}): Promise<void> {
  await run(['-f', '-'], `table ${T} {}\ndelete table ${T}\n`, opts);
}

/** Is the guard table there? */
export async function guardInstalled(opts: GuardOptions = {}): Promise<boolean> {
  const out = await run(['list', 'tables', GUARD_FAMILY], undefined, opts);
  return new RegExp(`^table ${GUARD_FAMILY} ${GUARD_TABLE}$`, 'm').test(out);
}

/** The table as nft lists it (empty string when absent). */
export async function listGuard(opts: GuardOptions = {}): Promise<string> {
  if (!(await guardInstalled(opts))) return '';
  return run(['list', 'table', GUARD_FAMILY, GUARD_TABLE], undefined, opts);
}

/** The allowed links in the set (empty when the table is absent). */
export async function listGuardLinks(opts: GuardOptions = {}): Promise<GuestLink[]> {
  if (!(await guardInstalled(opts))) return [];
  const out = await run(['-j', 'list', 'set', GUARD_FAMILY, GUARD_TABLE, GUARD_SET], undefined, opts);
  const j = JSON.parse(out) as { nftables: Array<{ set?: { elem?: Array<{ concat?: [string, string] }> } }> };
  const elem = j.nftables.find((x) => x.set)?.set?.elem ?? [];
  return elem.filter((e) => Array.isArray(e.concat)).map((e) => ({ ifname: e.concat![0], addr: e.concat![1] }));
}

/**
 * Is the guard whole: the table there, each chain hooked and holding exactly its rules, and every one of `links`
 * in the set? False after `nft flush ruleset` (e.g. a reload of the host's nftables service), a deleted table,
 * a flushed chain, an inserted rule or a deleted element: then applyGuard({ add: links }) restores it.
 */
export async function guardIntact(links: GuestLink[] = [], opts: GuardOptions = {}): Promise<boolean> {
  links.forEach(checkLink);
  if (!(await guardInstalled(opts))) return false;
  const out = await run(['-j', 'list', 'table', GUARD_FAMILY, GUARD_TABLE], undefined, opts);
  const items = (
    JSON.parse(out) as {
      nftables: Array<
        Record<string, { name?: string; chain?: string; hook?: string; elem?: Array<{ concat?: [string, string] }> }>
      >;
    }
  ).nftables;
  const hooked = new Set(items.filter((x) => x.chain?.hook).map((x) => x.chain!.name));
  const rules = new Map<string, number>();
  for (const x of items) if (x.rule?.chain) rules.set(x.rule.chain, (rules.get(x.rule.chain) ?? 0) + 1);
  for (const [chain, n] of Object.entries(GUARD_RULES)) if (!hooked.has(chain) || rules.get(chain) !== n) return false;
  const elem = items.find((x) => x.set?.name === GUARD_SET)?.set?.elem ?? [];
  const have = new Set(elem.filter((e) => Array.isArray(e.concat)).map((e) => `${e.concat![0]} ${e.concat![1]}`));
  return links.every((l) => have.has(`${l.ifname} ${l.addr}`));
}
