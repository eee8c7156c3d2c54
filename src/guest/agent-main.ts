// Process entry of the guest agent (hylics-agent).
//
// How to use (drivers / integrator):
//   spawn(NODE_BIN, [...entryArgv('guest/agent-main'), '--name', NAME,
//                    '--channel-unix', '/run/hylics/channel.sock',     // sandbox: the daemon listens there
//                 or '--channel-port', 'org.hylics.channel.0',          // microVM: virtio-serial port by name
//                    '--app-socket', '/run/hylics/agent.sock',           // apps (lib.ts) connect here; 'none' = off
//                    '--share', '/mnt/hylics',
//                    '--log-level', 'info'])                             // logs: JSON lines (pino) on stderr
// Defaults: --channel-unix /run/hylics/channel.sock, --app-socket /run/hylics/agent.sock, --share /mnt/hylics,
// --name = hostname. The agent never exits because the host is away: it reconnects with capped, jittered
// exponential backoff (100 ms .. 5 s) and says hello again. It exits 0 on SIGTERM/SIGINT or a host `shutdown`
// request, 2 on bad arguments. On a virtio port, set UV_THREADPOOL_SIZE=8 in its environment if apps in the
// same process do heavy fs work (one pool thread waits on the port).
import { parseArgs } from 'node:util';
import { hostname } from 'node:os';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino } from 'pino';
import { Agent, DEFAULT_APP_SOCKET, DEFAULT_CHANNEL_SOCKET, DEFAULT_SHARE_DIR, type AgentChannel } from './agent.js';

function usage(msg: string): never {
  process.stderr.write(`hylics-agent: ${msg}\nusage: agent-main [--channel-unix PATH | --channel-port NAME] [--app-socket PATH|none] [--share DIR] [--name NAME] [--log-level LEVEL]\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      'channel-unix': { type: 'string' },
      'channel-port': { type: 'string' },
      'app-socket': { type: 'string', default: DEFAULT_APP_SOCKET },
      share: { type: 'string', default: DEFAULT_SHARE_DIR },
      name: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
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
const name = values.name ?? hostname();

const log = pino({ name: 'hylics-agent', level: values['log-level'], base: { guest: name, pid: process.pid } }, pino.destination(2));
if (appSocket) mkdirSync(dirname(appSocket), { recursive: true });

const agent = new Agent({ name, channel, appSocket, share: values.share!, log });
// Other areas register their guest-side handlers here, e.g.: agent.handle('module.start', ...)

let exiting = false;
async function exit(reason: string, code = 0): Promise<void> {
  if (exiting) return;
  exiting = true;
  try { await agent.stop(reason); } catch (e) { log.error({ err: (e as Error).message }, 'agent: error while stopping'); }
  log.info({ reason }, 'agent: exit');
  log.flush?.();
  process.exit(code);
}
process.on('SIGTERM', () => void exit('SIGTERM'));
process.on('SIGINT', () => void exit('SIGINT'));
agent.on('shutdown', (reason: string) => void exit(`shutdown: ${reason}`));
process.on('uncaughtException', (e) => { log.fatal({ err: e.stack ?? e.message }, 'agent: uncaught exception'); void exit('crash', 1); });

try {
  await agent.start();
} catch (e) {
  log.fatal({ err: (e as Error).message }, 'agent: cannot start');
  process.exit(1);
}
log.info({ channel, appSocket, share: values.share }, 'agent: started');
