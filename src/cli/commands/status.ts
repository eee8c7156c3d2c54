import type { Command } from 'commander';
import type { StatusView } from '../../core/api.js';
import { formatSize } from '../../core/units.js';
import { apiRequest } from '../client.js';
import { printJson } from '../output.js';
import { common, stateDir, type CommonOpts } from './common.js';

/** `hylics status` (also run by ../fast.ts without commander). */
export async function status(o: CommonOpts): Promise<void> {
  const s = await apiRequest<StatusView>(stateDir(o), 'GET', '/v1/status');
  if (o.json) return printJson(s);
  process.stdout.write(`hylicsd ${s.version} (pid ${s.pid}), state dir ${s.stateDir}, up ${s.uptimeSeconds.toFixed(0)} s\n` +
    `guests: ${s.guestsRunning} running of ${s.guests}; shares: ${formatSize(s.shareBytesUsed)} used of ${formatSize(s.shareBytesTotal)}\n`);
}

export function register(program: Command): void {
  common(program.command('status').description('show the daemon status')).action(status);
}
