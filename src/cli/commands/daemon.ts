import type { Command } from 'commander';
import { formatSize } from '../../core/units.js';
import { runDaemon } from '../../host/main.js';
import { ENGINE_TO_NGINX_MEAN_BYTES } from '../../host/modules/index.js';
import { DAEMON_SETTINGS, DEFAULT_SETTINGS, FLAGS, LOG_FORMATS, LOG_LEVELS, MODULE_ENGINE_VALUES, SANDBOX_ISOLATION_VALUES, SOCKET_OFFLOAD_COPY_VALUES, attrOf, checkSetting, mergeSettings, readConfigFile, type DaemonSettings, type SettingKey } from '../../host/config.js';

export function register(program: Command): void {
  program.command('daemon')
    .description('run hylicsd in the foreground (as root); guests keep running when it stops')
    .option('--config <file>', 'YAML settings with the same keys as these flags (e.g. /etc/hylics/hylicsd.yaml; env HYLICS_CONFIG); flags win; SIGHUP re-reads it')
    .option('--state-dir <dir>', 'state directory (env HYLICS_STATE_DIR, default /var/lib/hylics)')
    .option('--listen <host:port>', 'also serve the API on TCP; every request needs the bearer token in <state-dir>/api-token')
    .option('--allow-remote-api', 'allow --listen on a non-loopback address (plain HTTP: the token crosses the network in clear)')
    .option('--api-host <name>', 'a host name clients may use in the Host header on --listen (besides IP addresses and localhost); repeatable', (v: string, acc: string[] | undefined) => [...(acc ?? []), v])
    .option('--rotate-api-token', 'replace <state-dir>/api-token with a new random token at start')
    .option('--no-guest-firewall', 'do not install the guest firewall (nft table inet hylics_guard); guests can then reach the host and each other')
    .option('--log-level <level>', `${LOG_LEVELS.join('|')} (env HYLICS_LOG_LEVEL, default info)`)
    .option('--share-budget <size>', 'host memory for all controlled shares (e.g. 8G); over it, the controller shares it by SLO deficit')
    .option('--sandbox-isolation <how>', `${SANDBOX_ISOLATION_VALUES.join('|')}: sandbox guests as crun containers (a boundary: own root, user namespace, seccomp) or namespaces only (guest root is host root; not a boundary) (default container)`)
    .option('--module-engine <server>', `${MODULE_ENGINE_VALUES.join('|')}: the server behind guests' host-side modules; auto: lighttpd for a guest with http modules only, nginx for one with a stream module or whose recent responses are large (mean >= ${formatSize(ENGINE_TO_NGINX_MEAN_BYTES)}); lighttpd serves http modules only (default ${DEFAULT_SETTINGS.moduleEngine})`)
    .option('--socket-offload-copy <how>', `${SOCKET_OFFLOAD_COPY_VALUES.join('|')}: socket offload for sandbox guests: auto sends on a duplicate of the app's own socket (pidfd_getfd), repair moves the connection with TCP_REPAIR as for microVM guests (default ${DEFAULT_SETTINGS.socketOffloadCopy})`)
    .option('--log-format <form>', `${LOG_FORMATS.join('|')}: auto is journald lines with priorities under systemd, text on a terminal, else JSON (default auto)`)
    .action(async (o: Record<string, unknown> & { config?: string; rotateApiToken?: boolean }, cmd: Command) => {
      // flags given on the command line (not commander's defaults) win over the file
      const flags: Partial<Record<SettingKey, unknown>> = {};
      for (const key of Object.keys(DAEMON_SETTINGS) as SettingKey[]) {
        const attr = attrOf(key);
        if (cmd.getOptionValueSource(attr) === 'cli') flags[key] = checkSetting(key, o[attr], FLAGS);
      }
      const defaults: DaemonSettings = {
        ...DEFAULT_SETTINGS,
        ...(process.env.HYLICS_STATE_DIR ? { stateDir: process.env.HYLICS_STATE_DIR } : {}),
        ...(process.env.HYLICS_LOG_LEVEL ? { logLevel: checkSetting('log-level', process.env.HYLICS_LOG_LEVEL, 'env HYLICS_LOG_LEVEL') as DaemonSettings['logLevel'] } : {}),
      };
      const configFile = o.config ?? process.env.HYLICS_CONFIG;
      const load = async (): Promise<DaemonSettings> =>
        mergeSettings(configFile ? await readConfigFile(configFile) : {}, flags, defaults);
      await runDaemon(await load(), {
        rotateApiToken: o.rotateApiToken === true,
        ...(configFile ? { reload: load } : {}),
      });
    });
}
