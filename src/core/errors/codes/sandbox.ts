import type { ErrorTable } from '../types.js';

/** Codes of the sandbox area (see docs/errors.md): the sandbox driver and the OS adapters it uses. */
export const SANDBOX = {
  HYLICS_ERR_OS_COMMAND_FAILED: { http: 500, doc: 'A host command Hylics runs (ip, mount, umount, nsenter, ...) failed; the message gives the command line, its exit status and its stderr.' },
  HYLICS_ERR_CGROUP_UNSUPPORTED: { http: 500, doc: 'The host has neither cgroup v1 cpu+memory hierarchies nor a cgroup v2 hierarchy with the cpu and memory controllers, so CPU/memory limits cannot be applied.' },
  HYLICS_ERR_CGROUP_FAILED: { http: 500, doc: 'Creating, configuring or removing a guest\'s cgroup failed (the message names the file and the kernel\'s reason).' },
  HYLICS_ERR_SANDBOX_EXISTS: { http: 409, doc: 'A network namespace, veth or cgroup with this guest\'s name is already in use on the host (a leftover or another system); remove it (docs/operations.md) or pick another name.' },
  HYLICS_ERR_SANDBOX_NETNS_FAILED: { http: 500, doc: 'Setting up the guest\'s network namespace, veth pair, addresses or routes failed; what had been created was removed.' },
  HYLICS_ERR_SANDBOX_START_FAILED: { http: 500, doc: 'The sandbox guest\'s init did not come up (the message quotes its log); everything the start created was removed.' },
  HYLICS_ERR_SANDBOX_BAD_PATH: { http: 400, doc: 'The state dir path cannot be used for sandbox guests: it must be absolute, without whitespace, backslashes, commas or colons (overlayfs options), and must not contain /mnt/hylics or /run/hylics.' },
} as const satisfies ErrorTable;
