import type { Command } from 'commander';
import { stateDirFrom } from '../client.js';

export interface CommonOpts { stateDir?: string; json?: boolean; api?: string }

/**
 * Options every command takes, before or after the command name (`hylics --state-dir D guest ls` and
 * `hylics guest ls --state-dir D`): program.ts adds them to each command, hands values given earlier on to the
 * command that runs, and applies --api before its action. A new global option is one line here.
 */
export const GLOBAL_OPTIONS: Array<{ flags: string; description: string }> = [
  { flags: '--state-dir <dir>', description: 'hylicsd state directory (env HYLICS_STATE_DIR, default /var/lib/hylics)' },
  { flags: '--api <url>', description: 'reach hylicsd on its TCP listener (e.g. http://127.0.0.1:7070; env HYLICS_API) with the token from env HYLICS_API_TOKEN or <state-dir>/api-token' },
  { flags: '--json', description: 'print JSON instead of text' },
];

/** Every command takes the global options (program.ts also adds them to commands that do not call this). */
export function common(cmd: Command): Command {
  for (const o of GLOBAL_OPTIONS) cmd.option(o.flags, o.description);
  return cmd;
}

export function stateDir(opts: CommonOpts): string {
  return stateDirFrom(opts.stateDir);
}
