// The in-guest `hylics` command: the agent writes a small launcher into a directory it puts first on its own
// PATH (inherited by everything it runs: `hylics guest exec`, apps it starts), so every guest the daemon starts
// has `hylics` with the guest-side commands (task, tier, module). The launcher runs the guest CLI entry
// (src/cli/guest-main) with the same node and package the agent runs from, which both drivers make visible in
// the guest (sandbox: the host's file system; microVM: the read-only host view the agent is chroot'ed in).
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { entryArgv, NODE_BIN } from '../os/self.js';
import { GUEST_BIN_DIR } from '../core/guest-layout.js';

export const DEFAULT_BIN_DIR = GUEST_BIN_DIR;
export const GUEST_COMMAND = 'hylics';

const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function launcherScript(): string {
  return `#!/bin/sh\n# written by the Hylics agent: the guest-side hylics command (task, tier, module)\nexec ${[NODE_BIN, ...entryArgv('cli/guest-main')].map(sh).join(' ')} "$@"\n`;
}

/** Write <binDir>/hylics (atomically) and put binDir first on this process's PATH. Returns the launcher's path. */
export async function installGuestCommand(binDir = DEFAULT_BIN_DIR): Promise<string> {
  await mkdir(binDir, { recursive: true, mode: 0o755 });
  const target = join(binDir, GUEST_COMMAND);
  const tmp = `${target}.${process.pid}.tmp`;
  await writeFile(tmp, launcherScript(), { mode: 0o755 });
  await chmod(tmp, 0o755);
  await rename(tmp, target);
  const path = (process.env.PATH ?? '').split(delimiter).filter((p) => p !== '' && p !== binDir);
  process.env.PATH = [binDir, ...path].join(delimiter);
  return target;
}
