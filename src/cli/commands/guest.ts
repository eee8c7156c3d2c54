import type { Command } from 'commander';
import { constants } from 'node:os';
import type { ExecResult, GuestView } from '../../core/api.js';
import { HylicsError } from '../../core/errors/index.js';
import { DEFAULT_TIER_PROMOTE, TIER_PROMOTE_MODES, tierPromoteMode } from '../../core/tier-promote.js';
import type { TierSettingsBody } from '../../core/tier-settings.js';
import { apiRequest } from '../client.js';
import { guestDetails, guestLine, printJson, table } from '../output.js';
import { common, stateDir, type CommonOpts } from './common.js';

/** `hylics guest ls` (also run by ../fast.ts without commander). */
export async function listGuests(o: CommonOpts): Promise<void> {
  const gs = await apiRequest<GuestView[]>(stateDir(o), 'GET', '/v1/guests');
  if (o.json) return printJson(gs);
  process.stdout.write(gs.length === 0 ? 'no guests\n' : table([['NAME', 'DRIVER', 'STATUS', 'AGENT', 'ADDRESS', 'CPUS', 'SHARE USED / SIZE'], ...gs.map(guestLine)]));
}

export function register(program: Command): void {
  const guest = program.command('guest').description('create, inspect and remove guests');

  common(
    guest.command('create <name>').description('create and start a guest with its own shared in-memory file system'),
  )
    .option('--driver <kind>', 'sandbox | microvm', 'sandbox')
    .requiredOption('--share-size <size>', 'size limit of the share, e.g. 64M')
    .option('--cpus <n>', 'CPUs (fractional allowed, e.g. 0.5)', '1')
    .option('--memory <size>', 'memory limit, e.g. 512M', '512M')
    .option('--tier-idle <duration>', 'tiered store: a file unused this long moves to the disk tier (e.g. 10s; 0 = never; default 60s)')
    .option('--tier-promote <background|sync|off>', 'tiered store: move a disk-tier file back into the share on access: background (default; on = background), sync (the copy before the path is answered), off')
    .option('--disk-tier <dir|none>', 'tiered store: the disk tier in the guest, or none (sandbox: default or none)')
    .action(
      async (name: string, o: CommonOpts & CreateFlags) => {
        const tier = tierBody(o);
        const g = await apiRequest<GuestView>(stateDir(o), 'POST', '/v1/guests', {
          name,
          driver: o.driver,
          shareSize: o.shareSize,
          cpus: o.cpus,
          memory: o.memory,
          ...(tier ? { tier } : {}),
        });
        if (o.json) printJson(g);
        else process.stdout.write(guestDetails(g));
      },
    );

  common(guest.command('ls').description('list guests')).action(listGuests);

  common(guest.command('show <name>').description('show a guest, its share and its task statistics')).action(async (name: string, o: CommonOpts) => {
    const g = await apiRequest<GuestView>(stateDir(o), 'GET', `/v1/guests/${encodeURIComponent(name)}`);
    if (o.json) printJson(g); else process.stdout.write(guestDetails(g));
  });

  for (const [verb, what] of [['start', 'boot a stopped or failed guest again (its share and data as they are)'], ['stop', 'stop a guest and keep its share, data and disk']] as const) {
    common(guest.command(`${verb} <name>`).description(what)).action(async (name: string, o: CommonOpts) => {
      const g = await apiRequest<GuestView>(stateDir(o), 'POST', `/v1/guests/${encodeURIComponent(name)}/${verb}`);
      if (o.json) printJson(g); else process.stdout.write(`${name}: ${g.status}\n`);
    });
  }

  common(guest.command('rm <name>').description('stop and remove a guest and its share')).action(async (name: string, o: CommonOpts) => {
    const r = await apiRequest(stateDir(o), 'DELETE', `/v1/guests/${encodeURIComponent(name)}`);
    if (o.json) printJson(r); else process.stdout.write(`removed ${name}\n`);
  });

  common(guest.command('exec <name> <argv...>').description('run a command in the guest; its exit code and output are passed through'))
    .option('--timeout <ms>', 'kill the command after this many milliseconds', '60000')
    .action(async (name: string, argvIn: string[], o: CommonOpts & { timeout: string }) => {
      // options may stand anywhere before `--`; everything after it is the guest command's (drop a kept separator)
      const argv = argvIn[0] === '--' ? argvIn.slice(1) : argvIn;
      const r = await apiRequest<ExecResult>(stateDir(o), 'POST', `/v1/guests/${encodeURIComponent(name)}/exec`, { argv, timeoutMs: Number(o.timeout) });
      if (o.json) printJson(r);
      else {
        process.stdout.write(r.stdout);
        process.stderr.write(r.stderr);
      }
      const sig = r.signal ? (constants.signals as Record<string, number>)[r.signal] ?? 0 : 0;
      process.exitCode = r.exitCode ?? 128 + sig;
    });

  common(guest.command('console <name>').description('show the tail of the guest console / agent log'))
    .option('-n, --lines <n>', 'lines', '50')
    .action(async (name: string, o: CommonOpts & { lines: string }) => {
      const r = await apiRequest<{ text: string }>(stateDir(o), 'GET', `/v1/guests/${encodeURIComponent(name)}/console?lines=${Number(o.lines)}`);
      if (o.json) printJson(r); else process.stdout.write(r.text + '\n');
    });

  common(guest.command('libvirt-xml <name>').description('print a libvirt domain definition for a microvm guest')).action(async (name: string, o: CommonOpts) => {
    const r = await apiRequest<{ xml: string }>(stateDir(o), 'GET', `/v1/guests/${encodeURIComponent(name)}/libvirt-xml`);
    if (o.json) printJson(r); else process.stdout.write(r.xml);
  });

  common(guest.command('adopt').description('register a libvirt domain with hylicsd (share, control channel, routed tap) and edit its XML to use them (idempotent); the guest runs the bundled agent'))
    .requiredOption('--libvirt <domain>', 'the libvirt domain name (virsh dumpxml / define; the guest gets this name)')
    .option('--share-size <size>', 'size limit of the share, e.g. 64M (default: as recorded in the domain, else 64M)')
    .option('--xml <file>', 'edit this domain XML file instead of asking libvirt (prints the result, or writes --output)')
    .option('--output <file>', 'with --xml: where the edited XML goes (default stdout)')
    .option('--offline', 'edit the XML only, without hylicsd (paths below <state-dir>/libvirt/<domain>/ or --share/--channel)')
    .option('--hook', 'libvirt hook mode: domain XML on stdin, no virsh; registers only domains adopted before')
    .option('--share <dir>', 'with --offline: host directory exported as the share')
    .option('--channel <path>', 'with --offline: Unix socket of the control channel')
    .option('--bridge <name>', 'a bridged virtio NIC on this bridge instead of the routed tap')
    .option('--tap <dev>', 'with --offline: a routed virtio NIC on this (pre-made) tap device')
    .option('--mac <addr>', 'MAC address of the added NIC')
    .option('--connect <uri>', 'libvirt URI (virsh -c), e.g. qemu:///system')
    .action(async (o: import('./adopt.js').AdoptOpts) => (await import('./adopt.js')).adopt(o));
}

interface CreateFlags {
  driver: string; shareSize: string; cpus: string; memory: string;
  tierIdle?: string; tierPromote?: string; diskTier?: string;
}

/** The `tier` section of guest create from its flags (checked by the daemon), or undefined without any. */
function tierBody(o: Pick<CreateFlags, 'tierIdle' | 'tierPromote' | 'diskTier'>): TierSettingsBody | undefined {
  if (o.tierIdle === undefined && o.tierPromote === undefined && o.diskTier === undefined) return undefined;
  const promote = o.tierPromote === undefined ? undefined : tierPromoteMode(o.tierPromote);
  if (o.tierPromote !== undefined && promote === undefined) {
    throw new HylicsError('HYLICS_ERR_TIER_INVALID_SETTING', `--tier-promote must be ${TIER_PROMOTE_MODES.join(', ')} or on (= ${DEFAULT_TIER_PROMOTE}), got ${JSON.stringify(o.tierPromote)}`, { param: 'promote', value: o.tierPromote });
  }
  return {
    ...(o.tierIdle !== undefined ? { idle: o.tierIdle } : {}),
    ...(promote !== undefined ? { promote } : {}),
    ...(o.diskTier !== undefined ? { diskDir: o.diskTier } : {}),
  };
}
