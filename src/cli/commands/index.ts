import type { Command } from 'commander';
import { register as image } from './image.js';
import { register as daemon } from './daemon.js';
import { register as guest } from './guest.js';
import { register as share } from './share.js';
import { register as status } from './status.js';
import { register as sim } from './sim.js';
import { register as module } from './module.js';
import { register as demo } from './demo.js';

/** Every command group registers itself here (one file per area under ./). */
export type Register = (program: Command) => void;

export const COMMANDS: Register[] = [daemon, guest, share, status, image, sim, module, demo];
