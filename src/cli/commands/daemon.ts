import type { Command } from 'commander';
import { runDaemon } from '../../host/main.js';
import { stateDirFrom } from '../client.js';

export function register(program: Command): void {
  program.command('daemon')
    .description('run hylicsd in the foreground (as root); guests keep running when it stops')
    .option('--state-dir <dir>', 'state directory (env HYLICS_STATE_DIR, default /var/lib/hylics)')
    .option('--listen <host:port>', 'also serve the API on TCP (no authentication: trusted networks only)')
    .option('--allow-remote-api', 'allow --listen on a non-loopback address (no authentication: keep guests out with a firewall)')
    .option('--no-guest-firewall', 'do not install the guest firewall (nft table inet hylics_guard); guests can then reach the host and each other')
    .option('--log-level <level>', 'trace|debug|info|warn|error', process.env.HYLICS_LOG_LEVEL ?? 'info')
    .action(async (o: { stateDir?: string; listen?: string; allowRemoteApi?: boolean; guestFirewall: boolean; logLevel: string }) => {
      await runDaemon({ stateDir: stateDirFrom(o.stateDir), listen: o.listen, allowRemoteApi: o.allowRemoteApi === true, guestFirewall: o.guestFirewall, logLevel: o.logLevel });
    });
}
