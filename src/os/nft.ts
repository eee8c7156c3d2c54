// nftables adapter for module offload: per-guest table `ip hylics_mod_<daemon tag>_<guest>` whose NAT chains steer
// a guest's service address (guestAddr:port) to the host-side module worker (hostAddr:listenPort). Two chains, because
// locally generated traffic never passes prerouting: `pre` (hook prerouting, dstnat) for clients elsewhere on the
// network, `out` (hook output) for clients on the host itself. The whole table is replaced in one `nft -f -`
// transaction each time, so a change is atomic and a stale rule cannot linger; removal deletes the table.
import { spawn } from 'node:child_process';
import { isIPv4 } from 'node:net';
import { HylicsError } from '../core/errors/index.js';
import { spawnError } from './exec.js';

export interface DnatRule {
  /** The guest's own address and the port its clients use. */
  guestAddr: string;
  port: number;
  /** Where the module worker listens on the host. */
  toAddr: string;
  toPort: number;
}

/**
 * The guest's table. `tag` is the daemon's id (a hash of its state dir): tables are host-wide and guest names are
 * only unique per daemon, so two daemons with a guest of the same name must not share (and replace) one table.
 * Without a tag (tests): `hylics_mod_<guest>`.
 */
export function moduleTableName(guest: string, tag = ''): string {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(guest)) throw new HylicsError('HYLICS_ERR_INVALID_NAME', `invalid guest name ${JSON.stringify(guest)}`, { name: guest });
  if (tag !== '' && !/^[a-z0-9]{1,16}$/.test(tag)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `invalid nft table tag ${JSON.stringify(tag)}`, { tag });
  return `hylics_mod_${tag === '' ? '' : `${tag}_`}${guest.replace(/-/g, '_')}`;
}

function checkPort(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${what} must be 1-65535, got ${p}`, { what, value: p });
  return p;
}

function checkAddr(a: string, what: string): string {
  if (!isIPv4(a)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${what} must be an IPv4 address, got ${JSON.stringify(a)}`, { what, value: a });
  return a;
}

/** The nft script that makes the table hold exactly these rules (validated: nothing guest-given reaches nft raw). */
export function renderModuleTable(guest: string, rules: DnatRule[], tag = ''): string {
  const t = moduleTableName(guest, tag);
  const lines = rules.map((r) => `ip daddr ${checkAddr(r.guestAddr, 'guestAddr')} tcp dport ${checkPort(r.port, 'port')} dnat to ${checkAddr(r.toAddr, 'toAddr')}:${checkPort(r.toPort, 'toPort')}`);
  return [
    `table ip ${t} {}`,
    `delete table ip ${t}`,
    `table ip ${t} {`,
    '  chain pre {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...lines.map((l) => `    ${l}`),
    '  }',
    '  chain out {',
    '    type nat hook output priority -100; policy accept;',
    ...lines.map((l) => `    ${l}`),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Run nft (in network namespace `netns` when given: tables are per namespace, so tests can use a private one). */
export function nft(args: string[], stdin?: string, opts: { netns?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const [cmd, argv] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, 'nft', ...args]] : ['nft', args];
    const p = spawn(cmd, argv, { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', (e: NodeJS.ErrnoException) => reject(spawnError(e, cmd, argv, 'HYLICS_ERR_NFT_FAILED')));
    p.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new HylicsError('HYLICS_ERR_NFT_FAILED', `nft ${args.join(' ')} failed: ${err.trim()}`, { stderr: err.trim(), script: stdin }));
    });
    if (p.stdin) {
      p.stdin.on('error', () => { /* nft exited early: its exit status and stderr tell why */ });
      p.stdin.end(stdin);
    }
  });
}

/** Replace the guest's module table with exactly `rules` (an empty list removes the table). Atomic. */
export async function applyModuleRules(guest: string, rules: DnatRule[], tag = ''): Promise<void> {
  if (rules.length === 0) return removeModuleRules(guest, tag);
  await nft(['-f', '-'], renderModuleTable(guest, rules, tag));
}

/** Delete the guest's module table; no error when it is already gone. */
export async function removeModuleRules(guest: string, tag = ''): Promise<void> {
  const t = moduleTableName(guest, tag);
  await nft(['-f', '-'], `table ip ${t} {}\ndelete table ip ${t}\n`);
}

/** The table as nft lists it (empty string when absent): for tests and `hylics doctor`-style checks. */
export async function listModuleRules(guest: string, tag = ''): Promise<string> {
  try {
    return await nft(['list', 'table', 'ip', moduleTableName(guest, tag)]);
  } catch (e) {
    if (e instanceof HylicsError && e.code === 'HYLICS_ERR_NFT_FAILED') return '';
    throw e;
  }
}

/** Guest names that have a module table of the daemon tagged `tag` (`ip hylics_mod_<tag>_*`), e.g. left behind by
 * a daemon that died. Without a tag: every `ip hylics_mod_*` table's suffix. */
export async function listModuleTableGuests(tag = ''): Promise<string[]> {
  const out = await nft(['list', 'tables', 'ip']);
  const prefix = tag === '' ? 'hylics_mod_' : `${moduleTableName('x', tag).slice(0, -1)}`;
  return out.split('\n').map((l) => /^table ip ([a-z0-9_]+)$/.exec(l.trim())?.[1]).filter((n): n is string => n !== undefined && n.startsWith(prefix))
    .map((n) => n.slice(prefix.length).replace(/_/g, '-'));
}
