// `hylics module start|ls|stop`: host-side middleware modules of a guest, through the daemon's HTTP API
// (POST/GET/DELETE /v1/guests/{name}/modules[/{id}], answered by host/modules ModuleManager).
import type { Command } from 'commander';
import { HylicsError } from '../../core/errors/index.js';
import { formatSize, parseNumber } from '../../core/units.js';
import type { ModuleInfo } from '../../host/modules/types.js';
import { apiRequest } from '../client.js';
import type { connect } from '../../guest/lib.js';
import { printJson, table } from '../output.js';
import { common, stateDir, type CommonOpts } from './common.js';

const intArg = (v: string, what: string, min: number, max: number): number =>
  parseNumber(what, v, { integer: true, min, max });

const base = (guest: string): string => `/v1/guests/${encodeURIComponent(guest)}/modules`;

// Inside a guest there is no daemon socket: without a GUEST argument the command goes to the local agent
// (/run/hylics/agent.sock or $HYLICS_AGENT_SOCKET), which forwards it over the control channel. The host then
// acts for the guest that channel belongs to, so a guest can only touch its own modules.
// The guest library (channel peer, ajv schemas) is loaded only on this path: host-side calls do not need it.
async function viaAgent<T>(fn: (agent: Awaited<ReturnType<typeof connect>>) => Promise<T>): Promise<T> {
  const agent = await (await import('../../guest/lib.js')).connect();
  try { return await fn(agent); } finally { await agent.close(); }
}

export function register(program: Command): void {
  const mod = program.command('module').description('middleware modules: serve a guest\'s share from the host (HTTP file delivery, video streaming)');

  common(
    mod
      .command('start [guest]')
      .description(
        "start a module on the guest's address and port; prints the URLs clients use (inside a guest: omit GUEST)",
      ),
  )
    .requiredOption('--kind <kind>', 'http (file delivery) or stream (HLS / progressive MP4)')
    .requiredOption('--root <dir>', "directory inside the guest's share to serve (relative to the share root)")
    .requiredOption('--port <n>', "port on the guest's address")
    .option('--host-port <n>', 'also serve on this host port (1024-65535)')
    .action(
      async (
        guest: string | undefined,
        o: CommonOpts & { kind: string; root: string; port: string; hostPort?: string },
      ) => {
        if (o.kind !== 'http' && o.kind !== 'stream')
          throw new HylicsError(
            'HYLICS_ERR_MODULE_KIND',
            `--kind must be http or stream, got ${JSON.stringify(o.kind)}`,
            { kind: o.kind },
          );
        const body = {
          kind: o.kind,
          root: o.root,
          port: intArg(o.port, '--port', 1, 65535),
          ...(o.hostPort !== undefined ? { hostPort: intArg(o.hostPort, '--host-port', 1024, 65535) } : {}),
        };
        const m =
          guest === undefined
            ? ((await viaAgent((a) =>
                a.startModule(body as { kind: 'http' | 'stream'; root: string; port: number; hostPort?: number }),
              )) as unknown as ModuleInfo)
            : await apiRequest<ModuleInfo>(stateDir(o), 'POST', base(guest), body);
        if (o.json) printJson(m);
        else
          process.stdout.write(
            `${m.id} (${m.kind}) serving ${m.root || '/'} of ${guest ?? 'this guest'}'s share\n${m.urls.map((u) => `  ${u}`).join('\n')}\n`,
          );
      },
    );

  common(mod.command('ls [guest]').alias('list').description('list the guest\'s modules (inside a guest: omit GUEST)'))
    .action(async (guest: string | undefined, o: CommonOpts) => {
      const r = guest === undefined
        ? await viaAgent((a) => a.listModules()) as unknown as ModuleInfo[]
        : await apiRequest<ModuleInfo[] | { modules: ModuleInfo[] }>(stateDir(o), 'GET', base(guest));
      const mods = Array.isArray(r) ? r : r.modules;
      if (o.json) { printJson(mods); return; }
      if (mods.length === 0) { process.stdout.write(`${guest ?? 'this guest'} runs no modules\n`); return; }
      process.stdout.write(table([
        ['ID', 'KIND', 'ROOT', 'URL', 'REQUESTS', 'SENT', 'ERRORS'],
        ...mods.map((m) => [m.id, m.kind, m.root || '/', m.urls.join(' '), String(m.totals.requests), formatSize(m.totals.bytes), String(m.totals.errors)]),
      ]));
      // the guest's engine (the same for all its modules): which server, and why
      const e = mods[0]!.engine;
      if (e) process.stdout.write(`engine: ${e.kind ?? 'none'} (module-engine ${e.setting}: ${e.reason})\n`);
    });

  common(mod.command('stop <guest-or-id> [id]').description('stop one of the guest\'s modules: `stop GUEST ID` on the host, `stop ID` inside a guest'))
    .action(async (first: string, second: string | undefined, o: CommonOpts) => {
      const [guest, id] = second === undefined ? [undefined, first] : [first, second];
      const r = guest === undefined
        ? await viaAgent((a) => a.stopModule(id))
        : await apiRequest(stateDir(o), 'DELETE', `${base(guest)}/${encodeURIComponent(id)}`);
      if (o.json) printJson(r === '' || r === undefined ? { stopped: id, guest } : r);
      else process.stdout.write(`${guest ?? 'this guest'}: module ${id} stopped\n`);
    });
}
