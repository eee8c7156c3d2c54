// libvirt domain XML for a microvm guest, for operators who run their VMs with libvirt instead of hylicsd's own
// QEMU: the same kernel/initramfs and command line, shared memfd memory (required by virtio-fs), the share as a
// virtiofs <filesystem> (libvirt starts virtiofsd itself, cache=none as ours), the host-root view as an
// externally started virtiofsd socket, the control channel as a virtio-serial <channel> with the same port name,
// a virtio-blk disk with cache=none, a routed tap (<interface type='ethernet'>, managed='no'), and the serial
// console to the same log file. `virt-xml-validate` (libvirt-clients) accepts it; the tests check that.
import type { DriverContext, DriverState } from './drivers/types.js';
import { defaultAgentArgv, kernelCmdline, microvmPaths, type MicrovmState } from './drivers/microvm.js';
import { CHANNEL_PORT, HOSTROOT_TAG, SHARE_TAG } from '../os/image/init.js';
import { guestMac, memoryMiB, VIRTIOFS_QUEUE_SIZE } from '../os/qemu.js';
import { VIRTIOFSD } from '../os/virtiofsd.js';
import { join } from 'node:path';

const esc = (s: string | number): string => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');

export interface LibvirtOptions {
  /** kvm (default when the guest's state does not say) or qemu (TCG). */
  domainType?: 'kvm' | 'qemu';
  emulator?: string;
  /** Include the agent argv in the kernel command line (default: as the driver would). */
  agentArgv?: string[] | false;
}

/**
 * The domain XML for the guest of `ctx`. `state` (the driver state of a running or stopped guest) supplies the
 * image and accelerator it used; without it the newest built image (<state>/images/current) is referenced.
 */
export function renderLibvirtXml(ctx: DriverContext, state?: DriverState, opts: LibvirtOptions = {}): string {
  const s = state as Partial<MicrovmState> | undefined;
  const p = microvmPaths(ctx);
  const images = join(ctx.stateDir, 'images', 'current');
  const kernel = s?.kernel ?? join(images, 'vmlinuz');
  const initrd = s?.initrd ?? join(images, 'initrd.img');
  const type = opts.domainType ?? (s?.accel === 'tcg' ? 'qemu' : 'kvm');
  const agent = opts.agentArgv === false ? undefined : opts.agentArgv ?? defaultAgentArgv(ctx.spec.name);
  const mem = memoryMiB(ctx.spec.memoryBytes);
  const vcpus = Math.max(1, Math.ceil(ctx.spec.cpus));
  const shareCache = s?.shareCache ?? 'none';
  const lines = [
    `<domain type='${type}'>`,
    `  <name>hylics-${esc(ctx.spec.name)}</name>`,
    `  <title>Hylics microvm guest ${esc(ctx.spec.name)}</title>`,
    `  <memory unit='MiB'>${mem}</memory>`,
    `  <currentMemory unit='MiB'>${mem}</currentMemory>`,
    '  <memoryBacking>',
    "    <source type='memfd'/>",
    "    <access mode='shared'/>",
    '  </memoryBacking>',
    `  <vcpu placement='static'>${vcpus}</vcpu>`,
    '  <os>',
    "    <type arch='x86_64' machine='q35'>hvm</type>",
    `    <kernel>${esc(kernel)}</kernel>`,
    `    <initrd>${esc(initrd)}</initrd>`,
    `    <cmdline>${esc(kernelCmdline(ctx, agent))}</cmdline>`,
    '  </os>',
    '  <features>',
    '    <acpi/>',
    '  </features>',
    type === 'kvm' ? "  <cpu mode='host-passthrough'/>" : "  <cpu mode='maximum'/>",
    '  <on_poweroff>destroy</on_poweroff>',
    '  <on_reboot>destroy</on_reboot>',
    '  <on_crash>destroy</on_crash>',
    '  <devices>',
    `    <emulator>${esc(opts.emulator ?? '/usr/bin/qemu-system-x86_64')}</emulator>`,
    "    <disk type='file' device='disk'>",
    "      <driver name='qemu' type='raw' cache='none' io='native' discard='unmap'/>",
    `      <source file='${esc(p.disk)}'/>`,
    "      <target dev='vda' bus='virtio'/>",
    '    </disk>',
    "    <filesystem type='mount' accessmode='passthrough'>",
    `      <driver type='virtiofs' queue='${VIRTIOFS_QUEUE_SIZE}'/>`,
    `      <binary path='${esc(VIRTIOFSD)}' xattr='off'>`,
    `        <cache mode='${shareCache}'/>`,
    "        <sandbox mode='namespace'/>",
    '      </binary>',
    `      <source dir='${esc(ctx.paths.share)}'/>`,
    `      <target dir='${SHARE_TAG}'/>`,
    '    </filesystem>',
    '    <!-- the read-only host-root view for the agent: start it as the microvm driver does (src/os/virtiofsd.ts) -->',
    "    <filesystem type='mount'>",
    `      <driver type='virtiofs' queue='${VIRTIOFS_QUEUE_SIZE}'/>`,
    `      <source socket='${esc(p.fsRoot)}'/>`,
    `      <target dir='${HOSTROOT_TAG}'/>`,
    '    </filesystem>',
    "    <interface type='ethernet'>",
    `      <mac address='${guestMac(ctx.network.index)}'/>`,
    `      <target dev='${esc(ctx.network.hostIf)}' managed='no'/>`,
    "      <model type='virtio'/>",
    '    </interface>',
    "    <channel type='unix'>",
    `      <source mode='bind' path='${esc(p.channel)}'/>`,
    `      <target type='virtio' name='${CHANNEL_PORT}'/>`,
    '    </channel>',
    "    <serial type='file'>",
    `      <source path='${esc(p.console)}'/>`,
    "      <target port='0'/>",
    '    </serial>',
    "    <console type='file'>",
    `      <source path='${esc(p.console)}'/>`,
    "      <target type='serial' port='0'/>",
    '    </console>',
    ...(s?.vsockCid !== undefined ? ["    <vsock model='virtio'>", `      <cid auto='no' address='${s.vsockCid}'/>`, '    </vsock>'] : []),
    "    <memballoon model='none'/>",
    '  </devices>',
    '</domain>',
  ];
  return lines.join('\n') + '\n';
}
