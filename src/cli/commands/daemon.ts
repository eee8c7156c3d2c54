import type { Command } from 'commander';
import { runDaemon } from '../../host/main.js';
import { stateDirFrom } from '../client.js';
import { parseSize } from '../../core/units.js';

export function register(program: Command): void {
  program.command('daemon')
    .description('run hylicsd in the foreground (as root); guests keep running when it stops')
    .option('--state-dir <dir>', 'state directory (env HYLICS_STATE_DIR, default /var/lib/hylics)')
    .option('--listen <host:port>', 'also serve the API on TCP; every request needs the bearer token in <state-dir>/api-token')
    .option('--allow-remote-api', 'allow --listen on a non-loopback address (plain HTTP: the token crosses the network in clear)')
    .option('--api-host <name>', 'a host name clients may use in the Host header on --listen (besides IP addresses and localhost); repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--rotate-api-token', 'replace <state-dir>/api-token with a new random token at start')
    .option('--no-guest-firewall', 'do not install the guest firewall (nft table inet hylics_guard); guests can then reach the host and each other')
    .option('--log-level <level>', 'trace|debug|info|warn|error', process.env.HYLICS_LOG_LEVEL ?? 'info')
    .option('--share-budget <size>', 'host memory for all controlled shares (e.g. 8G); over it, the controller shares it by SLO deficit')
    .action(async (o: { stateDir?: string; listen?: string; allowRemoteApi?: boolean; apiHost: string[]; rotateApiToken?: boolean; guestFirewall: boolean; logLevel: string; shareBudget?: string }) => {
      const shareBudgetBytes = o.shareBudget === undefined ? undefined : parseSize(o.shareBudget, 'share budget');
      await runDaemon({ stateDir: stateDirFrom(o.stateDir), listen: o.listen, allowRemoteApi: o.allowRemoteApi === true, apiHosts: o.apiHost, rotateApiToken: o.rotateApiToken === true, guestFirewall: o.guestFirewall, logLevel: o.logLevel, shareBudgetBytes });
    });
}
