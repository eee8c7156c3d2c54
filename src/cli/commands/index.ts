import type { Command } from 'commander';

/** Every command group registers itself here (one file per area under ./). */
export type Register = (program: Command) => void;

export const COMMANDS: Register[] = [];
