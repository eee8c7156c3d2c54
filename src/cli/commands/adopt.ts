// `hylics guest adopt --libvirt DOMAIN`: give a VM that libvirt runs the share, channel and network facts of a
// Hylics guest by editing its domain XML (src/host/libvirt-adopt.ts): `virsh dumpxml --inactive`, the edit,
// `virsh define --validate`. Or offline on a file: --xml FILE [--output FILE]. Running it again changes nothing.
// Loaded only when the command runs (xmldom and the os/ constants are not on the other guest commands' path).
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HylicsError } from '../../core/errors/index.js';
import { adoptDomainXml, type AdoptNetwork } from '../../host/libvirt-adopt.js';
import { run } from '../../os/image/run.js';
import { printJson } from '../output.js';
import { stateDir, type CommonOpts } from './common.js';

export interface AdoptOpts extends CommonOpts {
  libvirt: string; xml?: string; output?: string; share?: string; channel?: string;
  bridge?: string; tap?: string; mac?: string; connect?: string;
}

export async function adopt(o: AdoptOpts): Promise<void> {
  if (o.bridge && o.tap) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'give --bridge (bridged) or --tap (routed), not both');
  if (o.mac !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(o.mac)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `--mac wants aa:bb:cc:dd:ee:ff, got ${JSON.stringify(o.mac)}`);
  const base = join(stateDir(o), 'libvirt', o.libvirt);
  const network: AdoptNetwork | undefined = o.bridge ? { kind: 'bridged', bridge: o.bridge, ...(o.mac ? { mac: o.mac } : {}) }
    : o.tap ? { kind: 'routed', tap: o.tap, ...(o.mac ? { mac: o.mac } : {}) } : undefined;
  const facts = { share: o.share ?? join(base, 'share'), channel: o.channel ?? join(base, 'channel.sock'), ...(network ? { network } : {}) };
  const virsh = (args: string[]): string[] => [...(o.connect ? ['-c', o.connect] : []), ...args];

  const xml = o.xml ? await readFile(o.xml, 'utf8') : (await run('virsh', virsh(['dumpxml', '--inactive', o.libvirt]))).stdout;
  const r = adoptDomainXml(xml, facts);
  let defined = false;
  if (o.xml) {
    if (o.output && o.output !== '-') await writeFile(o.output, r.xml);
    else if (!o.json) process.stdout.write(r.xml);
  } else if (r.changed.length > 0) {
    const dir = await mkdtemp(join(tmpdir(), 'hylics-adopt-'));
    try {
      await writeFile(join(dir, 'domain.xml'), r.xml);
      await run('virsh', virsh(['define', '--validate', join(dir, 'domain.xml')]));
      defined = true;
    } finally { await rm(dir, { recursive: true, force: true }); }
  }
  const summary = { domain: o.libvirt, changed: r.changed, defined, ...facts };
  if (o.json) return printJson(o.xml && !o.output ? { ...summary, xml: r.xml } : summary);
  const said = r.changed.length === 0 ? 'already adopted, nothing changed' : `${defined ? 'defined' : 'edited'}: ${r.changed.join(', ')}`;
  process.stderr.write(`${o.libvirt}: ${said}\n  share ${facts.share} (virtio-fs tag hylics), channel ${facts.channel}\n` +
    (defined ? '  the new devices apply at the domain\'s next start (virsh shutdown + start)\n' : ''));
}
