// Starting and stopping hylicsd as a process: root check, one daemon per state dir (pid file), structured logs
// (pino), the API on <state-dir>/hylicsd.sock (and optionally TCP), signals. Guests keep running when the daemon
// stops or dies; the next daemon on the same state dir re-adopts them.
import { chmod, lstat, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { HylicsError } from '../core/errors/index.js';
import { parseSize } from '../core/units.js';
import { Daemon } from './daemon.js';
import { buildApi } from './http.js';
import { wireBackends } from './wiring.js';
import type { SandboxIsolation } from './drivers/sandbox.js';
import type { EngineSetting } from './modules/engine-api.js';
import type { SocketOffloadCopy } from './offload/socket.js';
import { guardInstalled } from '../os/nft-guard.js';
import { writeFileAtomic } from '../os/atomic-file.js';
import { apiTokenPath, ensureApiToken } from './api-auth.js';
import { startLogCapper } from './guest-logs.js';
import { processCmdline, signal } from '../os/proc.js';
import { diffSettings, type DaemonSettings } from './config.js';
import { daemonLogger, resolveForm } from './log.js';

export interface DaemonProcessOptions {
  stateDir: string;
  /** host:port for an additional TCP listener (bearer token from <state-dir>/api-token, Host allow-list). */
  listen?: string;
  /** Allow --listen on a non-loopback address (the token then crosses the network in clear text). */
  allowRemoteApi?: boolean;
  /** Host names (besides IP literals and localhost) clients may use in the Host header on the TCP listener. */
  apiHosts?: string[];
  /** Replace the API token with a new one at start (clients holding the old one are refused from then on). */
  rotateApiToken?: boolean;
  logLevel?: string;
  /** The guest firewall (nft table inet hylics_guard); default on. Off only for hosts that cannot have it. */
  guestFirewall?: boolean;
  /** Host memory budget for all controlled shares (bytes); none by default. */
  shareBudgetBytes?: number;
  /** Sandbox guests as crun containers (default) or namespaces only. */
  sandboxIsolation?: SandboxIsolation;
  /** The server behind guests' host-side modules (default DEFAULT_ENGINE). */
  moduleEngine?: EngineSetting;
  /** Socket offload for sandbox guests: the descriptor copy (auto) or the TCP_REPAIR handoff only (repair). */
  socketOffloadCopy?: SocketOffloadCopy;
}

async function pidAlive(pid: number): Promise<boolean> {
  return signal(pid, 0) && ((await processCmdline(pid))?.includes('daemon') ?? false);
}

async function takePidFile(stateDir: string): Promise<string> {
  const path = join(stateDir, 'hylicsd.pid');
  try {
    const other = Number((await readFile(path, 'utf8')).trim());
    if (Number.isInteger(other) && other !== process.pid && (await pidAlive(other))) {
      throw new HylicsError('HYLICS_ERR_CONFLICT', `another hylicsd (pid ${other}) already serves ${stateDir}`, { pid: other });
    }
  } catch (e) {
    if (e instanceof HylicsError) throw e;
  }
  // atomic and never through a symlink planted at the path (rename replaces the link itself)
  await writeFileAtomic(path, `${process.pid}\n`, 0o644);
  return path;
}

/** --listen as host and port; refused off loopback without allowRemoteApi. Undefined when not listening on TCP. */
function parseListen(opts: Pick<DaemonProcessOptions, 'listen' | 'allowRemoteApi'>): { host: string; port: number } | undefined {
  if (!opts.listen) return undefined;
  const m = /^(.*):(\d+)$/.exec(opts.listen);
  if (!m) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `--listen wants host:port, got ${opts.listen}`);
  // Plain HTTP: off loopback the token crosses the network in clear text, and guests route through this host
  // (Linux accepts packets for any local address on any interface; the guest firewall drops them, but other
  // machines on that network are not guests).
  const host = m[1] || '127.0.0.1';
  if (!/^(127\.|localhost$|\[?::1\]?$)/.test(host) && !opts.allowRemoteApi) {
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `--listen ${opts.listen} is not a loopback address: the API is plain HTTP (its bearer token would cross the network in clear); pass --allow-remote-api only on a trusted network or behind a TLS proxy`);
  }
  return { host, port: Number(m[2]) };
}

/**
 * The state dir holds root's secrets (API token, shares, sockets): it must be root's own directory, not a symlink,
 * and nobody else may create or swap files in it. Group/world write bits are taken away (with a warning).
 */
async function secureStateDir(stateDir: string, log: Logger): Promise<void> {
  const st = await lstat(stateDir);
  if (!st.isDirectory()) throw new HylicsError('HYLICS_ERR_CONFLICT', `state dir ${stateDir} is not a directory (a symlink?); pass the real path`, { stateDir });
  if (st.uid !== 0) throw new HylicsError('HYLICS_ERR_CONFLICT', `state dir ${stateDir} is owned by uid ${st.uid}, not root: another user could swap the daemon's files; chown it to root or pick another dir`, { stateDir, uid: st.uid });
  if ((st.mode & 0o022) !== 0) {
    const mode = st.mode & 0o755;
    await chmod(stateDir, mode);
    log.warn({ stateDir, was: (st.mode & 0o777).toString(8), now: mode.toString(8) }, 'state dir was group/world-writable: write bits removed');
  }
}

export interface RunningDaemon {
  daemon: Daemon;
  servers: FastifyInstance[];
  socketPath: string;
  stop(): Promise<void>;
  /** Replace the TCP listener (or remove it: no listen); on failure the TCP listener stays off, the socket serves. */
  setTcp(o: Pick<DaemonProcessOptions, 'listen' | 'allowRemoteApi' | 'apiHosts'>): Promise<void>;
}

export async function startDaemon(opts: DaemonProcessOptions, log: Logger = pino({ level: opts.logLevel ?? 'info' })): Promise<RunningDaemon> {
  if (process.getuid?.() !== 0) throw new HylicsError('HYLICS_ERR_NOT_ROOT', 'hylicsd needs root (it mounts tmpfs shares and creates namespaces, cgroups and nftables rules)');
  // validated before anything is started, so a bad --listen changes nothing
  let tcpListen = parseListen(opts);
  await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
  await secureStateDir(opts.stateDir, log);
  const pidFile = await takePidFile(opts.stateDir);
  // made at every start (kept when it exists): a client of a TCP listener reads it, root only
  const apiToken = await ensureApiToken(opts.stateDir, { rotate: opts.rotateApiToken === true });
  const backends = await wireBackends(opts.stateDir, log, {
    guestFirewall: opts.guestFirewall,
    sandboxIsolation: opts.sandboxIsolation,
    ...(opts.moduleEngine ? { moduleEngine: opts.moduleEngine } : {}),
    ...(opts.socketOffloadCopy ? { socketOffloadCopy: opts.socketOffloadCopy } : {}),
  });
  if (opts.guestFirewall === false) {
    // The table is host-wide: one installed by another daemon keeps filtering this daemon's guests too.
    const present = await guardInstalled().catch(() => false);
    log.warn({ guardTablePresent: present }, present
      ? 'guest firewall off (--no-guest-firewall), but table inet hylics_guard exists (another daemon?) and still applies to every guest link; `nft delete table inet hylics_guard` if no daemon needs it'
      : 'guest firewall off (--no-guest-firewall): guests can reach the host and each other and can spoof source addresses');
  }
  const daemon = new Daemon({
    stateDir: opts.stateDir,
    log,
    ...backends,
    ...(opts.shareBudgetBytes !== undefined ? { shareBudgetBytes: opts.shareBudgetBytes } : {}),
  });
  await daemon.start();
  // guests write their consoles and logs at will: keep each file under its cap while the daemon runs
  const stopLogCapper = startLogCapper(opts.stateDir, log.child({ component: 'logs' }));

  const socketPath = join(opts.stateDir, 'hylicsd.sock');
  await rm(socketPath, { force: true });
  const servers: FastifyInstance[] = [];
  const unix = await buildApi(daemon, log);
  await unix.listen({ path: socketPath });
  await chmod(socketPath, 0o600);
  servers.push(unix);
  let tcp: FastifyInstance | undefined;
  if (tcpListen) {
    tcp = await buildApi(daemon, log, { auth: { token: apiToken, allowedHosts: opts.apiHosts ?? [] } });
    await tcp.listen(tcpListen);
    servers.push(tcp);
  }
  /** Reload: a new TCP listener (address, remote permission, Host names); the Unix socket stays as it is. */
  const setTcp = async (o: Pick<DaemonProcessOptions, 'listen' | 'allowRemoteApi' | 'apiHosts'>): Promise<void> => {
    const next = parseListen(o); // a bad value throws here and changes nothing
    if (tcp) {
      await tcp.close();
      servers.splice(servers.indexOf(tcp), 1);
      tcp = undefined;
    }
    tcpListen = next;
    if (!next) return;
    const t = await buildApi(daemon, log, { auth: { token: apiToken, allowedHosts: o.apiHosts ?? [] } });
    await t.listen(next);
    tcp = t;
    servers.push(t);
  };
  log.info({ stateDir: opts.stateDir, socket: socketPath, listen: opts.listen, ...(tcpListen ? { apiToken: apiTokenPath(opts.stateDir) } : {}) }, 'hylicsd ready');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= (async () => {
    log.info('hylicsd stopping (guests keep running)');
    await Promise.all(servers.map((s) => s.close()));
    stopLogCapper();
    await daemon.close();
    await backends.close?.();
    await rm(pidFile, { force: true });
    await rm(socketPath, { force: true });
  })());
  return { daemon, servers, socketPath, stop, setTcp };
}

/** `hylics daemon`: run until SIGTERM/SIGINT; SIGHUP (`systemctl reload`) re-reads the settings. */
export async function runDaemon(
  settings: DaemonSettings,
  opts: { rotateApiToken?: boolean; reload?: () => Promise<DaemonSettings> } = {},
): Promise<void> {
  const { log, sink } = daemonLogger(settings.logLevel, settings.logFormat);
  // SIGHUP's default action ends the process: take it over before starting (a reload then waits for the start)
  let reloading = Promise.resolve();
  let ready: () => void = () => undefined;
  reloading = new Promise<void>((r) => {
    ready = r;
  });
  const onHup = (): void => {
    log.info({ signal: 'SIGHUP' }, 'reloading settings');
    reloading = reloading.then(reload);
  };
  process.on('SIGHUP', onHup);
  let d: RunningDaemon;
  try {
    d = await startDaemon({ ...processOptions(settings), rotateApiToken: opts.rotateApiToken }, log);
  } catch (e) {
    process.off('SIGHUP', onHup);
    throw e;
  }
  ready();
  let current = settings;
  const reload = async (): Promise<void> => {
    if (!opts.reload) return log.info('reload: no config file, nothing to re-read');
    let next: DaemonSettings;
    try {
      next = await opts.reload();
    } catch (e) {
      return log.error({ err: (e as Error).message }, 'reload failed: settings unchanged');
    }
    const { live, restart } = diffSettings(current, next);
    if (live.includes('log-level')) log.level = next.logLevel;
    if (live.includes('log-format')) sink.form = resolveForm(next.logFormat);
    let applied = live;
    if (live.some((k) => k === 'listen' || k === 'allow-remote-api' || k === 'api-host')) {
      try {
        await d.setTcp(processOptions(next));
      } catch (e) {
        log.error(
          { err: (e as Error).message, listen: next.listen },
          'reload: the TCP listener could not be replaced (the Unix socket still serves)',
        );
        applied = live.filter((k) => k === 'log-level' || k === 'log-format');
      }
    }
    // what a reload cannot change keeps its running value (a restart applies it; guests keep running)
    current = {
      ...next,
      stateDir: current.stateDir,
      guestFirewall: current.guestFirewall,
      shareBudget: current.shareBudget,
      sandboxIsolation: current.sandboxIsolation,
      moduleEngine: current.moduleEngine,
      socketOffloadCopy: current.socketOffloadCopy,
    };
    if (restart.length > 0)
      log.warn(
        { settings: restart },
        'reload: these settings apply only after a restart (guests keep running across it)',
      );
    log.info({ applied }, 'reload done');
  };
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string): void => {
      log.info({ signal: sig }, 'signal received');
      void reloading
        .then(() => d.stop())
        .then(resolve, (e) => {
          log.error({ err: String(e) }, 'stop failed');
          resolve();
        });
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  process.off('SIGHUP', onHup);
}

function processOptions(s: DaemonSettings): DaemonProcessOptions {
  return { stateDir: s.stateDir, listen: s.listen, allowRemoteApi: s.allowRemoteApi, apiHosts: s.apiHost, guestFirewall: s.guestFirewall, sandboxIsolation: s.sandboxIsolation, moduleEngine: s.moduleEngine, socketOffloadCopy: s.socketOffloadCopy, logLevel: s.logLevel, ...(s.shareBudget !== undefined ? { shareBudgetBytes: parseSize(s.shareBudget, 'share budget') } : {}) };
}
