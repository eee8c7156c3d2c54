import type { Command } from 'commander';
import { stateDirFrom } from '../client.js';

export interface CommonOpts { stateDir?: string; json?: boolean }

/** Every command takes --state-dir and --json. */
export function common(cmd: Command): Command {
  return cmd
    .option('--state-dir <dir>', 'hylicsd state directory (env HYLICS_STATE_DIR, default /var/lib/hylics)')
    .option('--json', 'print JSON instead of text');
}

export function stateDir(opts: CommonOpts): string {
  return stateDirFrom(opts.stateDir);
}
