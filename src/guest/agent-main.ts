// Process entry of the guest agent (hylics-agent).
//
// How to use (drivers / integrator):
//   spawn(NODE_BIN, [...entryArgv('guest/agent-main'), '--name', NAME,
//                    '--channel-unix', '/run/hylics/channel.sock',     // sandbox: the daemon listens there
//                 or '--channel-port', 'org.hylics.channel.0',          // microVM: virtio-serial port by name
//                    '--app-socket', '/run/hylics/agent.sock',           // apps (lib.ts) connect here; 'none' = off
//                    '--offload-socket', '/run/hylics/offload.sock',     // apps pass sockets (SCM_RIGHTS); 'none'
//                    '--share', '/mnt/hylics',
//                    '--log-level', 'info',                              // logs: JSON lines (pino) on stderr
//                    '--disk-tier', '/var/lib/hylics-tier',              // the store's disk tier ('none': no store)
//                    '--tier-idle', '60s', '--tier-sweep', '15s',        // idle eviction after, checked every; 0: off
//                    '--tier-promote', 'background',                      // move back on access: background|sync|off
//                    '--tier-headroom', '1M',                              // share space kept free
//                    '--bin-dir', '/run/hylics/bin'])                    // in-guest `hylics` launcher; 'none' = off
// Defaults: --channel-unix /run/hylics/channel.sock, --app-socket /run/hylics/agent.sock, --share /mnt/hylics,
// --name = hostname. The agent never exits because the host is away: it reconnects with capped, jittered
// exponential backoff (100 ms .. 5 s) and says hello again. It exits 0 on SIGTERM/SIGINT or a host `shutdown`
// request, 2 on bad arguments. On a virtio port, set UV_THREADPOOL_SIZE=8 in its environment if apps in the
// same process do heavy fs work (one pool thread waits on the port).
import { parseArgs } from 'node:util';
import { hostname } from 'node:os';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { Agent, DEFAULT_APP_SOCKET, DEFAULT_CHANNEL_SOCKET, DEFAULT_SHARE_DIR, type AgentChannel } from './agent.js';
import { DEFAULT_BIN_DIR, installGuestCommand } from './launcher.js';
import { parseTierOptions, TIER_ARGS } from './tier/options.js';
import { TierManager } from './tier/manager.js';
import { TierStore } from './tier/store.js';
import { serveOffloadFd } from './offload-fd.js';
import { tcpRepairAvailable } from '../os/tcp-repair.js';

function usage(msg: string): never {
  process.stderr.write(`hylics-agent: ${msg}\nusage: agent-main [--channel-unix PATH | --channel-port NAME] [--app-socket PATH|none] [--offload-socket PATH|none] [--share DIR] [--name NAME] [--log-level LEVEL] [--disk-tier DIR|none] [--tier-idle DUR] [--tier-sweep DUR] [--tier-promote background|sync|off] [--tier-headroom SIZE] [--bin-dir DIR|none]\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      'channel-unix': { type: 'string' },
      'channel-port': { type: 'string' },
      'app-socket': { type: 'string', default: DEFAULT_APP_SOCKET },
      'offload-socket': { type: 'string' },
      share: { type: 'string', default: DEFAULT_SHARE_DIR },
      name: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      ...TIER_ARGS,
      'bin-dir': { type: 'string', default: DEFAULT_BIN_DIR },
    },
    strict: true,
  }));
} catch (e) {
  usage((e as Error).message);
}
if (values['channel-unix'] && values['channel-port']) usage('give --channel-unix or --channel-port, not both');
const channel: AgentChannel = values['channel-port']
  ? { kind: 'port', name: values['channel-port'] }
  : { kind: 'unix', path: values['channel-unix'] ?? DEFAULT_CHANNEL_SOCKET };
const appSocket = values['app-socket'] === 'none' ? null : values['app-socket']!;
// beside the app socket by default (/run/hylics/offload.sock)
const offloadSocket = values['offload-socket'] === 'none' ? null : values['offload-socket'] ?? join(dirname(appSocket ?? DEFAULT_APP_SOCKET), 'offload.sock');
const name = values.name ?? hostname();
let tierOpts;
try { tierOpts = parseTierOptions(values); } catch (e) { usage((e as Error).message); }

const log = pino({ name: 'hylics-agent', level: values['log-level'], base: { guest: name, pid: process.pid } }, pino.destination(2));
if (appSocket) mkdirSync(dirname(appSocket), { recursive: true });

const agent = new Agent({ name, channel, appSocket, share: values.share!, log });
// Other areas register their guest-side handlers here, e.g.: agent.handle('module.start', ...)
const tier = tierOpts
  ? new TierManager(new TierStore({ memoryDir: values.share!, ...tierOpts.store }), {
      sweepMs: tierOpts.sweepMs,
      log,
    }).attach(agent)
  : undefined;

let exiting = false;
async function exit(reason: string, code = 0): Promise<void> {
  if (exiting) return;
  exiting = true;
  tier?.stop();
  try { await agent.stop(reason); } catch (e) { log.error({ err: (e as Error).message }, 'agent: error while stopping'); }
  log.info({ reason }, 'agent: exit');
  log.flush?.();
  process.exit(code);
}
process.on('SIGTERM', () => void exit('SIGTERM'));
process.on('SIGINT', () => void exit('SIGINT'));
agent.on('shutdown', (reason: string) => void exit(`shutdown: ${reason}`));
process.on('uncaughtException', (e) => { log.fatal({ err: e.stack ?? e.message }, 'agent: uncaught exception'); void exit('crash', 1); });

// what the agent runs (guest exec, the in-guest hylics) finds the tiers where this agent keeps them
process.env.HYLICS_SHARE = values.share!;
if (tierOpts) process.env.HYLICS_DISK_TIER = tierOpts.store.diskDir;
if (values['bin-dir'] !== 'none') {
  // before the agent serves exec: the commands it runs inherit the PATH with the launcher's directory
  try { log.info({ path: await installGuestCommand(values['bin-dir']) }, 'agent: in-guest hylics command installed'); } catch (e) { log.warn({ err: (e as Error).message }, 'agent: cannot install the in-guest hylics command'); }
}
try {
  // a store that cannot open (share not mounted yet, disk tier unusable) does not keep the agent from serving
  await tier?.start().catch((e: unknown) => log.error({ err: (e as Error).message }, 'tier: store not available; tier ops will fail'));
  await agent.start();
  if (offloadSocket) {
    // socket offload for apps in any language: they pass their socket with SCM_RIGHTS (src/guest/offload-fd.ts)
    const repair = tcpRepairAvailable();
    if (!repair.ok) log.warn({ reason: repair.reason }, 'agent: no offload socket (needs the native addon)');
    else {
      mkdirSync(dirname(offloadSocket), { recursive: true });
      const off = await serveOffloadFd(
        offloadSocket,
        values.share!,
        (op, p, o) => agent.hostRequest(op, p as never, o) as Promise<unknown>,
        (o, m) => log.warn(o, m),
      );
      process.once('exit', () => { void off.close(); });
    }
  }
} catch (e) {
  log.fatal({ err: (e as Error).message }, 'agent: cannot start');
  process.exit(1);
}
log.info({ channel, appSocket, offloadSocket, share: values.share }, 'agent: started');
