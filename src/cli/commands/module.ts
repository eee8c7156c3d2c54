// `hylics module start|ls|stop`: host-side middleware modules of a guest, through the daemon's HTTP API
// (POST/GET/DELETE /v1/guests/{name}/modules[/{id}], answered by host/modules ModuleManager).
import type { Command } from 'commander';
import { HylicsError } from '../../core/errors/index.js';
import { formatSize } from '../../core/units.js';
import type { ModuleInfo } from '../../host/modules/types.js';
import { apiRequest } from '../client.js';
import { printJson, table } from '../output.js';
import { common, stateDir, type CommonOpts } from './common.js';

function intArg(v: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${what} must be a whole number ${min}-${max}, got ${JSON.stringify(v)}`, { what, value: v });
  return Number(v);
}

const base = (guest: string): string => `/v1/guests/${encodeURIComponent(guest)}/modules`;

export function register(program: Command): void {
  const mod = program.command('module').description('middleware modules: serve a guest\'s share from the host (HTTP file delivery, video streaming)');

  common(mod.command('start <guest>').description('start a module on the guest\'s address and port; prints the URLs clients use'))
    .requiredOption('--kind <kind>', 'http (file delivery) or stream (HLS / progressive MP4)')
    .requiredOption('--root <dir>', 'directory inside the guest\'s share to serve (relative to the share root)')
    .requiredOption('--port <n>', 'port on the guest\'s address')
    .option('--host-port <n>', 'also serve on this host port (1024-65535)')
    .action(async (guest: string, o: CommonOpts & { kind: string; root: string; port: string; hostPort?: string }) => {
      if (o.kind !== 'http' && o.kind !== 'stream') throw new HylicsError('HYLICS_ERR_MODULE_KIND', `--kind must be http or stream, got ${JSON.stringify(o.kind)}`, { kind: o.kind });
      const body = { kind: o.kind, root: o.root, port: intArg(o.port, '--port', 1, 65535), ...(o.hostPort !== undefined ? { hostPort: intArg(o.hostPort, '--host-port', 1024, 65535) } : {}) };
      const m = await apiRequest<ModuleInfo>(stateDir(o), 'POST', base(guest), body);
      if (o.json) printJson(m);
      else process.stdout.write(`${m.id} (${m.kind}) serving ${m.root || '/'} of ${guest}'s share\n${m.urls.map((u) => `  ${u}`).join('\n')}\n`);
    });

  common(mod.command('ls <guest>').alias('list').description('list the guest\'s modules'))
    .action(async (guest: string, o: CommonOpts) => {
      const r = await apiRequest<ModuleInfo[] | { modules: ModuleInfo[] }>(stateDir(o), 'GET', base(guest));
      const mods = Array.isArray(r) ? r : r.modules;
      if (o.json) { printJson(mods); return; }
      if (mods.length === 0) { process.stdout.write(`${guest} runs no modules\n`); return; }
      process.stdout.write(table([
        ['ID', 'KIND', 'ROOT', 'URL', 'REQUESTS', 'SENT', 'ERRORS'],
        ...mods.map((m) => [m.id, m.kind, m.root || '/', m.urls.join(' '), String(m.totals.requests), formatSize(m.totals.bytes), String(m.totals.errors)]),
      ]));
    });

  common(mod.command('stop <guest> <id>').description('stop one of the guest\'s modules'))
    .action(async (guest: string, id: string, o: CommonOpts) => {
      const r = await apiRequest(stateDir(o), 'DELETE', `${base(guest)}/${encodeURIComponent(id)}`);
      if (o.json) printJson(r === '' || r === undefined ? { stopped: id, guest } : r);
      else process.stdout.write(`${guest}: module ${id} stopped\n`);
    });
}
