import type { Command } from 'commander';

/** A command module registers its command (or command group) on the program: one file per area under ./. */
export type Register = (program: Command) => void;

/**
 * Every top-level command: its name, the one-line summary `hylics --help` lists, and how to load it. Only the
 * command being run is imported (a module and its dependencies cost tens of milliseconds each: the daemon's
 * HTTP server, ajv, vega), so `hylics guest ls` loads the API client and nothing else. Adding a command is one
 * file under ./ exporting `register` plus one line here.
 */
export interface CommandEntry { name: string; summary: string; load: () => Promise<{ register: Register }> }

export const COMMANDS: CommandEntry[] = [
  { name: 'daemon', summary: 'run hylicsd in the foreground (as root); guests keep running when it stops', load: () => import('./daemon.js') },
  { name: 'guest', summary: 'create, inspect and remove guests', load: () => import('./guest.js') },
  { name: 'share', summary: 'manage guest shares (in-memory file systems)', load: () => import('./share.js') },
  { name: 'status', summary: 'show the daemon status', load: () => import('./status.js') },
  { name: 'image', summary: 'the microVM guest image (Debian kernel + busybox initramfs)', load: () => import('./image.js') },
  { name: 'sim', summary: 'simulate the share-size controller (paper §6.4, Table 3)', load: () => import('./sim.js') },
  { name: 'module', summary: 'middleware modules: serve a guest\'s share from the host (HTTP file delivery, video streaming)', load: () => import('./module.js') },
  { name: 'control', summary: 'the share-size controller of a guest (paper §5): settings, decisions, calibration', load: () => import('./control.js') },
  { name: 'task', summary: 'tasks in a guest, reported to the host profiler (response times for the share controller)', load: () => import('./task.js') },
  { name: 'tier', summary: 'the guest\'s tiered store: the share (memory tier) and a directory on the guest\'s disk (disk tier)', load: () => import('./tier.js') },
  { name: 'offload', summary: 'in a guest: hand a socket to the host for the send of a file (socket offload, any language)', load: () => import('./offload.js') },
  { name: 'example', summary: 'example apps that use Hylics from inside a guest (file-server: socket offload)', load: () => import('./example.js') },
  { name: 'demo', summary: 'run Hylics end to end on a temporary state dir: daemon, guest, shared files, compression + delivery, cleanup', load: () => import('./demo.js') },
];
