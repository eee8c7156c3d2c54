// Adopting a VM that libvirt runs (`hylics guest adopt --libvirt DOMAIN`): edit its domain XML so that the guest
// gets what a Hylics guest has without Hylics starting it: shared memfd memory (virtio-fs needs it), the share as a
// virtiofs <filesystem> with the tag the agent mounts, the control channel as a virtio-serial <channel> with the
// agent's port name (QEMU binds the socket, hylicsd connects), and optionally a routed tap or a bridge port.
// Every device added carries a user alias (ua-hylics-*): running the edit again replaces those devices in place,
// so the result of a second run is byte-identical to the first (idempotent). Other devices are left untouched.
// The XML is edited as a DOM (@xmldom/xmldom), not as text, so unknown elements and their order survive.
import { DOMParser, XMLSerializer, type Document, type Element } from '@xmldom/xmldom';
import { HylicsError } from '../core/errors/index.js';
import { CHANNEL_PORT, SHARE_TAG } from '../os/image/init.js';
import { VIRTIOFSD } from '../os/virtiofsd.js';

export const ALIAS = { share: 'ua-hylics-share', channel: 'ua-hylics-channel', net: 'ua-hylics-net' } as const;
const METADATA_NS = 'https://hylics.dev/xmlns/libvirt/1';

export type AdoptNetwork = { kind: 'routed'; tap: string; mac?: string } | { kind: 'bridged'; bridge: string; mac?: string };

export interface AdoptFacts {
  /** The host directory the guest sees as its share (a tmpfs that hylicsd keeps). */
  share: string;
  /** The Unix socket of the control channel (QEMU binds it; hylicsd connects). */
  channel: string;
  network?: AdoptNetwork;
  virtiofsd?: string;
  /** The share's size as hylicsd keeps it (recorded in the metadata, so the hook registers the same size). */
  shareSize?: string;
}

/** What a domain's XML says about its adoption (the metadata record), or undefined when it was never adopted. */
export interface AdoptedRecord { share: string; channel: string; shareSize?: string }

export function adoptedRecord(xml: string): AdoptedRecord | undefined {
  const doc = parse(xml);
  const md = children(doc.documentElement!, 'metadata')[0];
  const rec = md && children(md).find((e) => e.namespaceURI === METADATA_NS && e.localName === 'adopted');
  if (!rec) return undefined;
  const size = rec.getAttribute('share-size');
  return { share: rec.getAttribute('share') ?? '', channel: rec.getAttribute('channel') ?? '', ...(size ? { shareSize: size } : {}) };
}

export interface AdoptResult { xml: string; changed: string[] }

function parse(xml: string): Document {
  const errors: string[] = [];
  let doc: Document | undefined;
  try {
    doc = new DOMParser({ onError: (level, msg) => { if (level !== 'warning') errors.push(msg); } }).parseFromString(xml, 'text/xml');
  } catch (e) { errors.push((e as Error).message); } // xmldom throws on a fatal error
  const root = doc?.documentElement;
  if (errors.length > 0 || !root || root.tagName !== 'domain') {
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `not a libvirt domain XML${errors.length ? `: ${errors[0]}` : ''}`);
  }
  return doc!;
}

const children = (e: Element, tag?: string): Element[] =>
  Array.from(e.childNodes).filter(
    (n): n is Element => n.nodeType === 1 && (tag === undefined || (n as Element).tagName === tag),
  ) as Element[];

/** The indentation of `parent`'s children, taken from the document (libvirt writes two spaces per level). */
function indentOf(parent: Element): string {
  let depth = 0;
  for (let p = parent.parentNode; p && p.nodeType === 1; p = p.parentNode) depth++;
  return '  '.repeat(depth + 1);
}

/** Build an element from a compact spec: [tag, attrs, ...children]. */
type Spec = [string, Record<string, string>, ...Spec[]];
function build(doc: Document, spec: Spec, indent: string): Element {
  const [tag, attrs, ...kids] = spec;
  const e = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) {
    e.appendChild(doc.createTextNode(`\n${indent}  `));
    e.appendChild(build(doc, k, `${indent}  `));
  }
  if (kids.length > 0) e.appendChild(doc.createTextNode(`\n${indent}`));
  return e;
}

/** Put `el` where `old` was, or at the end of `parent` (before its closing tag, indented). */
function place(parent: Element, el: Element, old: Element | undefined): void {
  if (old) { parent.replaceChild(el, old); return; }
  const indent = indentOf(parent);
  const last = parent.lastChild;
  const closing = last && last.nodeType === 3 && /^\s*$/.test(last.nodeValue ?? '') ? last : null;
  parent.insertBefore(parent.ownerDocument!.createTextNode(`\n${indent}`), closing);
  parent.insertBefore(el, closing);
  if (!closing) parent.appendChild(parent.ownerDocument!.createTextNode(`\n${indent.slice(2)}`));
}

function serialize(e: Element): string {
  return new XMLSerializer().serializeToString(e);
}

function ensureChild(doc: Document, parent: Element, tag: string): Element {
  const found = children(parent, tag)[0];
  if (found) return found;
  const e = build(doc, [tag, {}], indentOf(parent));
  place(parent, e, undefined);
  return e;
}

/** Replace (by alias, or by what identifies it) or add one device; records whether the XML changed. */
function upsertDevice(
  doc: Document,
  devices: Element,
  spec: Spec,
  alias: string,
  same: (e: Element) => boolean,
  changed: string[],
  what: string,
): void {
  const el = build(doc, [...spec, ['alias', { name: alias }]] as Spec, indentOf(devices));
  const old =
    children(devices).find((d) => children(d, 'alias').some((x) => x.getAttribute('name') === alias)) ??
    children(devices).find(same);
  if (old && serialize(old) === serialize(el)) return;
  place(devices, el, old);
  changed.push(what);
}

/** Edit a domain's XML for Hylics (see the file comment). Throws HYLICS_ERR_INVALID_ARGUMENT on a non-domain. */
export function adoptDomainXml(xml: string, facts: AdoptFacts): AdoptResult {
  const doc = parse(xml);
  const domain = doc.documentElement!;
  const changed: string[] = [];

  // memory: memfd, shared (virtio-fs maps guest memory into virtiofsd)
  const mb = ensureChild(doc, domain, 'memoryBacking');
  const before = serialize(mb);
  const src = children(mb, 'source')[0];
  if (src) src.setAttribute('type', 'memfd'); else place(mb, build(doc, ['source', { type: 'memfd' }], indentOf(mb)), undefined);
  const acc = children(mb, 'access')[0];
  if (acc) acc.setAttribute('mode', 'shared'); else place(mb, build(doc, ['access', { mode: 'shared' }], indentOf(mb)), undefined);
  if (serialize(mb) !== before) changed.push('memoryBacking memfd shared');

  const devices = ensureChild(doc, domain, 'devices');
  upsertDevice(doc, devices, ['filesystem', { type: 'mount', accessmode: 'passthrough' },
    ['driver', { type: 'virtiofs', queue: '1024' }],
    ['binary', { path: facts.virtiofsd ?? VIRTIOFSD, xattr: 'off' }, ['cache', { mode: 'none' }], ['sandbox', { mode: 'namespace' }]],
    ['source', { dir: facts.share }],
    ['target', { dir: SHARE_TAG }],
  ], ALIAS.share, (d) => d.tagName === 'filesystem' && children(d, 'target').some((t) => t.getAttribute('dir') === SHARE_TAG), changed, 'virtio-fs share');

  upsertDevice(doc, devices, ['channel', { type: 'unix' },
    ['source', { mode: 'bind', path: facts.channel }],
    ['target', { type: 'virtio', name: CHANNEL_PORT }],
  ], ALIAS.channel, (d) => d.tagName === 'channel' && children(d, 'target').some((t) => t.getAttribute('name') === CHANNEL_PORT), changed, 'virtio-serial channel');

  const n = facts.network;
  if (n) {
    const mac: Spec[] = n.mac ? [['mac', { address: n.mac }]] : [];
    const spec: Spec = n.kind === 'routed'
      ? ['interface', { type: 'ethernet' }, ...mac, ['target', { dev: n.tap, managed: 'no' }], ['model', { type: 'virtio' }]]
      : ['interface', { type: 'bridge' }, ...mac, ['source', { bridge: n.bridge }], ['model', { type: 'virtio' }]];
    upsertDevice(doc, devices, spec, ALIAS.net, () => false, changed, `${n.kind} network`);
  }

  // a record of what was adopted, for people reading `virsh dumpxml` (libvirt keeps <metadata> as given)
  const md = ensureChild(doc, domain, 'metadata');
  const old = children(md).find((e) => e.namespaceURI === METADATA_NS);
  const rec = doc.createElementNS(METADATA_NS, 'hylics:adopted');
  rec.setAttribute('share', facts.share);
  rec.setAttribute('channel', facts.channel);
  if (facts.shareSize) rec.setAttribute('share-size', facts.shareSize);
  if (!old || serialize(old) !== serialize(rec)) { place(md, rec, old); changed.push('metadata'); }

  return { xml: new XMLSerializer().serializeToString(doc).replace(/\s*$/, '\n'), changed };
}
