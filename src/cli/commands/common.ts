import type { Command } from 'commander';
import { stateDirFrom, useApiUrl } from '../client.js';

export interface CommonOpts { stateDir?: string; json?: boolean; api?: string }

/** Every command takes --state-dir, --api and --json. */
export function common(cmd: Command): Command {
  return cmd
    .option('--state-dir <dir>', 'hylicsd state directory (env HYLICS_STATE_DIR, default /var/lib/hylics)')
    .option('--api <url>', 'reach hylicsd on its TCP listener (e.g. http://127.0.0.1:7070; env HYLICS_API) with the token from env HYLICS_API_TOKEN or <state-dir>/api-token')
    .option('--json', 'print JSON instead of text')
    .hook('preAction', (c) => useApiUrl((c.opts() as CommonOpts).api));
}

export function stateDir(opts: CommonOpts): string {
  return stateDirFrom(opts.stateDir);
}
