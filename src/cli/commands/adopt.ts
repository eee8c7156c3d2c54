// `hylics guest adopt --libvirt DOMAIN`: give a VM that libvirt runs the share, channel and network of a Hylics
// guest. Two halves, both idempotent:
//  - hylicsd registers the domain as a guest of driver `libvirt` (src/host/drivers/libvirt.ts): it mounts the
//    share tmpfs, makes the routed tap and the channel socket's directory, and connects to the channel whenever the
//    domain runs; an existing registration is started again if it was stopped;
//  - the domain XML is edited to name exactly those (src/host/libvirt-adopt.ts): `virsh dumpxml --inactive`, the
//    edit, `virsh define --validate`; or on a file with --xml FILE [--output FILE].
// --offline edits the XML only (default paths under <state-dir>/libvirt/<domain>/, no daemon). --hook is the
// libvirt hook's entry (contrib/libvirt/qemu): the domain XML comes on stdin, virsh is never called (libvirtd waits
// for its hook: calling back would deadlock), a domain without Hylics' metadata is left alone.
// Loaded only when the command runs (xmldom and the os/ constants are not on the other guest commands' path).
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GuestView } from '../../core/api.js';
import { HylicsError, isHylicsError } from '../../core/errors/index.js';
import { adoptDomainXml, adoptedRecord, type AdoptFacts, type AdoptNetwork } from '../../host/libvirt-adopt.js';
import { run } from '../../os/image/run.js';
import { apiRequest } from '../client.js';
import { printJson } from '../output.js';
import { stateDir, type CommonOpts } from './common.js';

export interface AdoptOpts extends CommonOpts {
  libvirt: string; xml?: string; output?: string; share?: string; channel?: string; shareSize?: string;
  bridge?: string; tap?: string; mac?: string; connect?: string; offline?: boolean; hook?: boolean;
}

const DEFAULT_SHARE_SIZE = '64M';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Register the domain with hylicsd (or find it registered, started again if stopped): the guest's view. */
async function register(o: AdoptOpts, shareSize: string): Promise<GuestView> {
  const dir = stateDir(o);
  const path = `/v1/guests/${encodeURIComponent(o.libvirt)}`;
  let g: GuestView | undefined;
  try {
    g = await apiRequest<GuestView>(dir, 'GET', path);
  } catch (e) {
    if (!isHylicsError(e) || e.code !== 'HYLICS_ERR_GUEST_NOT_FOUND') throw e;
  }
  if (!g) return apiRequest<GuestView>(dir, 'POST', '/v1/guests', { name: o.libvirt, driver: 'libvirt', shareSize });
  if (g.driver !== 'libvirt') throw new HylicsError('HYLICS_ERR_GUEST_EXISTS', `${o.libvirt} is a ${g.driver} guest of this daemon, not a libvirt domain`, { name: o.libvirt });
  if (g.status === 'running' || g.status === 'starting') return g;
  return apiRequest<GuestView>(dir, 'POST', `${path}/start`);
}

/** The XML facts of a registered guest: the daemon's share, channel socket and tap (routed) or --bridge. */
function factsOf(g: GuestView, o: AdoptOpts, shareSize: string): AdoptFacts {
  const info = g.driverInfo as { channelSocket?: string; tap?: string; mac?: string };
  if (!info.channelSocket || !info.tap) throw new HylicsError('HYLICS_ERR_INTERNAL', `hylicsd did not report the channel and tap of ${g.name}`);
  const mac = o.mac ?? info.mac;
  const network: AdoptNetwork = o.bridge ? { kind: 'bridged', bridge: o.bridge, ...(mac ? { mac } : {}) } : { kind: 'routed', tap: info.tap, ...(mac ? { mac } : {}) };
  return { share: g.share.path, channel: info.channelSocket, network, shareSize };
}

function offlineFacts(o: AdoptOpts): AdoptFacts {
  const base = join(stateDir(o), 'libvirt', o.libvirt);
  const network: AdoptNetwork | undefined = o.bridge ? { kind: 'bridged', bridge: o.bridge, ...(o.mac ? { mac: o.mac } : {}) }
    : o.tap ? { kind: 'routed', tap: o.tap, ...(o.mac ? { mac: o.mac } : {}) } : undefined;
  return { share: o.share ?? join(base, 'share'), channel: o.channel ?? join(base, 'channel.sock'), ...(network ? { network } : {}) };
}

export async function adopt(o: AdoptOpts): Promise<void> {
  if (o.bridge && o.tap) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'give --bridge (bridged) or --tap (routed), not both');
  if (o.mac !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(o.mac)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `--mac wants aa:bb:cc:dd:ee:ff, got ${JSON.stringify(o.mac)}`);
  if (!o.offline && (o.share || o.channel || o.tap)) {
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', '--share, --channel and --tap are for --offline: a registered domain gets the share, channel and tap hylicsd keeps');
  }
  if (o.hook) return hook(o);
  const xml = o.xml ? await readFile(o.xml, 'utf8') : (await run('virsh', virshArgs(o, ['dumpxml', '--inactive', o.libvirt]))).stdout;
  const shareSize = o.shareSize ?? adoptedRecordOrNone(xml)?.shareSize ?? DEFAULT_SHARE_SIZE;
  const registered = o.offline ? undefined : await register(o, shareSize);
  const facts = registered ? factsOf(registered, o, shareSize) : offlineFacts(o);
  const r = adoptDomainXml(xml, facts);
  let defined = false;
  if (o.xml) {
    if (o.output && o.output !== '-') await writeFile(o.output, r.xml);
    else if (!o.json) process.stdout.write(r.xml);
  } else if (r.changed.length > 0) {
    const dir = await mkdtemp(join(tmpdir(), 'hylics-adopt-'));
    try {
      await writeFile(join(dir, 'domain.xml'), r.xml);
      await run('virsh', virshArgs(o, ['define', '--validate', join(dir, 'domain.xml')]));
      defined = true;
    } finally { await rm(dir, { recursive: true, force: true }); }
  }
  const summary = { domain: o.libvirt, changed: r.changed, defined, registered: registered !== undefined, ...facts };
  if (o.json) return printJson(o.xml && !o.output ? { ...summary, xml: r.xml } : summary);
  const said = r.changed.length === 0 ? 'already adopted, nothing changed' : `${defined ? 'defined' : 'edited'}: ${r.changed.join(', ')}`;
  process.stderr.write(`${o.libvirt}: ${said}\n  share ${facts.share} (virtio-fs tag hylics), channel ${facts.channel}` +
    `${facts.network ? `, ${facts.network.kind} NIC ${facts.network.kind === 'routed' ? facts.network.tap : facts.network.bridge}` : ''}\n` +
    (registered ? `  registered with hylicsd as guest ${registered.name} (${registered.address}); the channel connects when the domain runs\n` : '') +
    (defined ? '  the new devices apply at the domain\'s next start (virsh shutdown + start)\n' : ''));
}

const virshArgs = (o: AdoptOpts, args: string[]): string[] => [...(o.connect ? ['-c', o.connect] : []), ...args];

function adoptedRecordOrNone(xml: string): ReturnType<typeof adoptedRecord> {
  try { return adoptedRecord(xml); } catch { return undefined; }
}

/**
 * The libvirt hook (`/etc/libvirt/hooks/qemu DOMAIN prepare begin -`, XML on stdin): before libvirt starts an
 * adopted domain, hylicsd must hold its share (virtiofsd opens the directory at start), tap and socket directory.
 * A domain without Hylics' metadata is not ours: nothing happens. Never calls virsh.
 */
async function hook(o: AdoptOpts): Promise<void> {
  const xml = await readStdin();
  const rec = adoptedRecord(xml);
  if (!rec) {
    if (o.json) printJson({ domain: o.libvirt, adopted: false });
    return;
  }
  const shareSize = o.shareSize ?? rec.shareSize ?? DEFAULT_SHARE_SIZE;
  const g = await register(o, shareSize);
  const facts = factsOf(g, o, shareSize);
  // the XML as libvirt will start it must name what hylicsd holds (a re-registered guest may have a new tap)
  const { network, ...withoutNet } = facts;
  const drift = adoptDomainXml(xml, xml.includes('ua-hylics-net') && network ? facts : withoutNet).changed;
  if (drift.length > 0) {
    process.stderr.write(`hylics hook: ${o.libvirt}: the domain XML differs from what hylicsd holds (${drift.join(', ')}): run \`hylics guest adopt --libvirt ${o.libvirt}\` outside the hook\n`);
  }
  if (o.json) printJson({ domain: o.libvirt, adopted: true, guest: g.name, status: g.status, drift });
}
