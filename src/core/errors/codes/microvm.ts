import type { ErrorTable } from '../types.js';

/** Codes of the microvm area (see docs/errors.md). */
export const MICROVM = {
  HYLICS_ERR_MICROVM_KERNEL_UNAVAILABLE: { http: 503, doc: 'The guest kernel package (the dependency of linux-image-cloud-amd64) could not be resolved or downloaded with apt, and none is cached: run `apt-get update` or restore network access to the Debian mirror, then `hylics image build`.' },
  HYLICS_ERR_MICROVM_IMAGE_BUILD: { http: 500, doc: 'Building the guest image (unpacking the kernel, depmod, initramfs) failed; the message names the step. Nothing half-built is kept in the image cache.' },
  HYLICS_ERR_MICROVM_KVM_UNAVAILABLE: { http: 400, doc: 'HYLICS_ACCEL=kvm was requested but /dev/kvm is missing or unusable; unset HYLICS_ACCEL (or set it to tcg) to use software emulation.' },
  HYLICS_ERR_MICROVM_QEMU_FAILED: { http: 500, doc: 'QEMU could not start the guest or exited early; the message carries the end of QEMU\'s log and everything started for the guest was cleaned up.' },
  HYLICS_ERR_MICROVM_VIRTIOFSD_FAILED: { http: 500, doc: 'virtiofsd (the per-guest virtio-fs server) did not come up or died; the guest was not started (or was stopped) and its processes and tap cleaned up.' },
  HYLICS_ERR_MICROVM_NETWORK: { http: 500, doc: 'The guest\'s tap device or its /32 route could not be set up (needs root and /dev/net/tun); nothing of it was left behind.' },
  HYLICS_ERR_MICROVM_DISK: { http: 500, doc: 'The guest\'s virtual disk image could not be created or formatted (host disk full, or e2fsprogs missing); the guest was not started.' },
  HYLICS_ERR_MICROVM_SOCKET_PATH: { http: 400, doc: 'A Unix socket path under the state dir is longer than the 107 bytes Linux allows; use a shorter --state-dir.' },
  HYLICS_ERR_MICROVM_QMP: { http: 502, doc: 'QEMU\'s monitor (QMP) did not answer or refused a command; the driver falls back to killing QEMU where it was stopping it.' },
  HYLICS_ERR_MICROVM_GUEST_SHELL: { http: 504, doc: 'A command sent to the guest\'s admin shell port did not complete before its deadline (guest still booting, hung, or gone).' },
} as const satisfies ErrorTable;
