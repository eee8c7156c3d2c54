// The libvirt domain XML for a microvm guest must be accepted by libvirt's own schema (virt-xml-validate from
// libvirt-clients) and carry what the guest needs: shared memfd memory, the virtio-fs share, the channel port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderLibvirtXml } from '../../src/host/libvirt.js';
import type { DriverContext } from '../../src/host/drivers/types.js';
import { run } from '../../src/os/image/run.js';
import { pino } from 'pino';

const ctx: DriverContext = {
  spec: { name: 'web1', driver: 'microvm', shareSizeBytes: 64 << 20, cpus: 1.5, memoryBytes: 512 << 20 },
  paths: { dir: '/var/lib/hylics/guests/web1', share: '/var/lib/hylics/guests/web1/share', run: '/var/lib/hylics/guests/web1/run', logs: '/var/lib/hylics/guests/web1/logs' },
  network: { index: 3, hostIf: 'hyh3', guestIf: 'hyg3', hostAddr: '10.213.3.1', guestAddr: '10.213.3.2', prefixLen: 24, netns: 'hylics-3-web1' },
  stateDir: '/var/lib/hylics',
  log: pino({ level: 'silent' }),
};

const validator = existsSync('/usr/bin/virt-xml-validate') ? false : 'needs virt-xml-validate (Debian package libvirt-clients)';

for (const [label, state] of [['before the first start (kvm)', undefined], ['of a TCG guest with vsock', { accel: 'tcg', vsockCid: 1003, kernel: '/x/vmlinuz', initrd: '/x/initrd.img', shareCache: 'none' }]] as const) {
  test(`libvirt XML ${label} validates against libvirt's schema`, { skip: validator }, async (t) => {
    const xml = renderLibvirtXml(ctx, state as Record<string, unknown> | undefined, { agentArgv: ['/usr/bin/node', "/opt/it's/agent.js"] });
    assert.match(xml, /<source type='memfd'\/>/);
    assert.match(xml, /<access mode='shared'\/>/);
    assert.match(xml, /<driver type='virtiofs'/);
    assert.match(xml, /<target dir='hylics'\/>/);
    assert.match(xml, /<target type='virtio' name='org\.hylics\.channel\.0'\/>/);
    assert.match(xml, /<vcpu placement='static'>2<\/vcpu>/);
    assert.match(xml, /hylics\.ip=10\.213\.3\.2 hylics\.gw=10\.213\.3\.1/);
    assert.equal(xml.includes('<vsock'), state !== undefined);
    assert.match(xml, state ? /<domain type='qemu'>/ : /<domain type='kvm'>/);
    const dir = await mkdtemp(join(tmpdir(), 'hylics-libvirt-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'domain.xml'), xml);
    const r = await run('virt-xml-validate', [join(dir, 'domain.xml'), 'domain'], { allowFail: true });
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout + r.stderr, /validates/);
  });
}
