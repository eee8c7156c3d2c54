// `hylics guest adopt --libvirt`: the edited domain XML passes libvirt's schema (virt-xml-validate), carries the
// share, channel and NIC, keeps everything else, and a second edit changes nothing (byte for byte).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ALIAS, adoptDomainXml } from '../../src/host/libvirt-adopt.js';
import { renderLibvirtXml } from '../../src/host/libvirt.js';
import type { DriverContext } from '../../src/host/drivers/types.js';
import { run } from '../../src/os/image/run.js';
import { HylicsError } from '../../src/core/errors/index.js';
import { hylics } from '../helpers/cli.js';
import { domainXml } from '../helpers/libvirt-domain.js';

const validator = existsSync('/usr/bin/virt-xml-validate') ? false : 'needs virt-xml-validate (Debian package libvirt-clients)';

/** A domain as `virsh dumpxml` shows an ordinary Debian VM: qcow2 disk, NAT network, hugepages. */
const DOMAIN = domainXml({
  name: 'web7', uuid: '0d0f5a4e-4a0b-4d7c-9a43-0c8e4c8d2f11', memoryKiB: 1048576, hugepages: true, natNic: true,
});
const FACTS = { share: '/var/lib/hylics/libvirt/web7/share', channel: '/var/lib/hylics/libvirt/web7/channel.sock' };

async function validate(xml: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-adopt-'));
  try {
    await writeFile(join(dir, 'd.xml'), xml);
    const r = await run('virt-xml-validate', [join(dir, 'd.xml'), 'domain'], { allowFail: true });
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${xml}`);
  } finally { await rm(dir, { recursive: true, force: true }); }
}

const count = (xml: string, re: RegExp): number => (xml.match(re) ?? []).length;

test('adopt: share, channel, memfd and a bridge port; valid; a second run changes nothing', { skip: validator }, async () => {
  const facts = { ...FACTS, network: { kind: 'bridged' as const, bridge: 'br0', mac: '52:54:00:aa:bb:01' } };
  const a = adoptDomainXml(DOMAIN, facts);
  assert.deepEqual(a.changed, ['memoryBacking memfd shared', 'virtio-fs share', 'virtio-serial channel', 'bridged network', 'metadata']);
  await validate(a.xml);
  assert.match(a.xml, /<hugepages\/>\s*<source type="memfd"\/>\s*<access mode="shared"\/>/); // hugepages kept
  assert.match(a.xml, /<source dir="\/var\/lib\/hylics\/libvirt\/web7\/share"\/>\s*<target dir="hylics"\/>/);
  assert.match(a.xml, /<source mode="bind" path="\/var\/lib\/hylics\/libvirt\/web7\/channel.sock"\/>\s*<target type="virtio" name="org.hylics.channel.0"\/>/);
  assert.match(a.xml, /<source network="default"\/>/); // the NAT NIC stays
  assert.match(a.xml, /<source file="\/var\/lib\/libvirt\/images\/web7.qcow2"\/>/);
  const b = adoptDomainXml(a.xml, facts);
  assert.deepEqual(b.changed, []);
  assert.equal(b.xml, a.xml);

  // new facts replace Hylics' own devices in place, never add a second one
  const c = adoptDomainXml(a.xml, { ...FACTS, share: '/srv/share', network: { kind: 'routed', tap: 'hyh9' } });
  assert.deepEqual(c.changed, ['virtio-fs share', 'routed network', 'metadata']);
  await validate(c.xml);
  for (const alias of Object.values(ALIAS)) assert.equal(count(c.xml, new RegExp(`name="${alias}"`, 'g')), 1, alias);
  assert.equal(count(c.xml, /<interface /g), 2);
  assert.match(c.xml, /<interface type="ethernet">\s*<target dev="hyh9" managed="no"\/>/);
});

test('adopt: a domain Hylics rendered already (no aliases) gets no second share or channel', { skip: validator }, async () => {
  const ctx: DriverContext = {
    spec: { name: 'web1', driver: 'microvm', shareSizeBytes: 64 << 20, cpus: 1, memoryBytes: 512 << 20 },
    paths: { dir: '/v/guests/web1', share: '/v/guests/web1/share', run: '/v/guests/web1/run', logs: '/v/guests/web1/logs' },
    network: { index: 3, hostIf: 'hyh3', guestIf: 'hyg3', hostAddr: '10.213.3.1', guestAddr: '10.213.3.2', prefixLen: 24, netns: 'hylics-3-web1' },
    stateDir: '/v', log: pino({ level: 'silent' }),
  };
  const a = adoptDomainXml(renderLibvirtXml(ctx), FACTS);
  await validate(a.xml);
  assert.equal(count(a.xml, /<target dir="hylics"\/>/g), 1);
  assert.equal(count(a.xml, /name="org.hylics.channel.0"/g), 1);
  assert.deepEqual(adoptDomainXml(a.xml, FACTS).changed, []);
});

test('adopt refuses what is not a domain, and the CLI edits a file offline, idempotently', async (t) => {
  assert.throws(() => adoptDomainXml('<network><name>x</name></network>', FACTS), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_INVALID_ARGUMENT');
  assert.throws(() => adoptDomainXml('<domain><name>', FACTS), /not a libvirt domain XML/);
  const dir = await mkdtemp(join(tmpdir(), 'hylics-adopt-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'in.xml'), DOMAIN);
  const r1 = await hylics(['guest', 'adopt', '--libvirt', 'web7', '--xml', join(dir, 'in.xml'), '--output', join(dir, 'out.xml'), '--tap', 'hyh9', '--offline', '--state-dir', '/var/lib/hylics']);
  assert.equal(r1.code, 0, r1.stderr);
  assert.match(r1.stderr, /web7: edited: memoryBacking memfd shared, virtio-fs share, virtio-serial channel, routed network, metadata/);
  const out = await readFile(join(dir, 'out.xml'), 'utf8');
  assert.match(out, /<source dir="\/var\/lib\/hylics\/libvirt\/web7\/share"\/>/);
  const r2 = await hylics(['--json', 'guest', 'adopt', '--libvirt', 'web7', '--xml', join(dir, 'out.xml'), '--tap', 'hyh9', '--offline', '--state-dir', '/var/lib/hylics']);
  assert.equal(r2.code, 0, r2.stderr);
  const j = JSON.parse(r2.stdout) as { changed: string[]; xml: string };
  assert.deepEqual(j.changed, []);
  assert.equal(j.xml, out);
  const bad = await hylics(['guest', 'adopt', '--libvirt', 'web7', '--xml', join(dir, 'in.xml'), '--tap', 'a', '--bridge', 'b']);
  assert.equal(bad.code, 2);
});
