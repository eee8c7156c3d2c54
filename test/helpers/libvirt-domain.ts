// The libvirt domain XML the adopt tests start from: an ordinary Debian VM as `virsh dumpxml` shows it (q35,
// qcow2 disk), optionally with hugepages and a NAT NIC (which adopting must keep).
export interface DomainFixture {
  name: string;
  memoryKiB: number;
  uuid?: string;
  /** <memoryBacking><hugepages/></memoryBacking>. */
  hugepages?: boolean;
  /** An interface on libvirt's `default` (NAT) network. */
  natNic?: boolean;
}

export function domainXml(d: DomainFixture): string {
  const lines = [
    "<domain type='kvm'>",
    `  <name>${d.name}</name>`,
    ...(d.uuid ? [`  <uuid>${d.uuid}</uuid>`] : []),
    `  <memory unit='KiB'>${d.memoryKiB}</memory>`,
    ...(d.hugepages ? ['  <memoryBacking>', '    <hugepages/>', '  </memoryBacking>'] : []),
    "  <vcpu placement='static'>2</vcpu>",
    '  <os>',
    "    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>",
    "    <boot dev='hd'/>",
    '  </os>',
    '  <devices>',
    '    <emulator>/usr/bin/qemu-system-x86_64</emulator>',
    "    <disk type='file' device='disk'>",
    "      <driver name='qemu' type='qcow2'/>",
    `      <source file='/var/lib/libvirt/images/${d.name}.qcow2'/>`,
    "      <target dev='vda' bus='virtio'/>",
    '    </disk>',
    ...(d.natNic
      ? ["    <interface type='network'>", "      <source network='default'/>", "      <model type='virtio'/>", '    </interface>']
      : []),
    '  </devices>',
    '</domain>',
  ];
  return lines.join('\n') + '\n';
}
