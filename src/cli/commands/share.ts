import type { Command } from 'commander';
import type { GuestView } from '../../core/api.js';
import { formatSize } from '../../core/units.js';
import { apiRequest } from '../client.js';
import { printJson } from '../output.js';
import { common, stateDir, type CommonOpts } from './common.js';

export function register(program: Command): void {
  const share = program.command('share').description('manage guest shares (in-memory file systems)');
  common(share.command('resize <name> <size>').description('resize a guest share while it runs (shrinking below the space in use is refused)'))
    .action(async (name: string, size: string, o: CommonOpts) => {
      const g = await apiRequest<GuestView>(stateDir(o), 'PUT', `/v1/guests/${encodeURIComponent(name)}/share`, { size });
      if (o.json) printJson(g);
      else process.stdout.write(`${name}: share is now ${formatSize(g.share.sizeBytes)} (${formatSize(g.share.usedBytes)} used)\n`);
    });
}
