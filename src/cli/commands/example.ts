// `hylics example file-server`: the example app of socket offload (src/guest/file-server.ts), run inside a guest.
import type { Command } from 'commander';
import { HylicsError } from '../../core/errors/index.js';
import { parseNumber } from '../../core/units.js';
import { GUEST_SHARE_DIR } from '../../core/guest-layout.js';
import { startFileServer } from '../../guest/file-server.js';

const intArg = (v: string, what: string, min: number, max: number): number =>
  parseNumber(what, v, { integer: true, min, max });

export function register(program: Command): void {
  const ex = program.command('example').description('example apps that use Hylics from inside a guest (file-server: socket offload)');
  ex.command('file-server')
    .description(
      'HTTP/1.1 file server (keep-alive, Range) whose bodies the host sends by socket offload (hylicsSendfile)',
    )
    .requiredOption('--root <dir>', 'directory to serve (inside the share, /mnt/hylics, for offload)')
    .requiredOption('--port <n>', 'TCP port')
    .option('--host <addr>', 'address to listen on', '0.0.0.0')
    .option('--offload <scheme>', 'socket (host sends the bodies) or none (the guest sends them)', 'socket')
    .option('--offload-min <bytes>', 'smaller bodies are sent by the guest', '0')
    .option(
      '--offload-head <on|off>',
      'on: the response headers go in the handoff, the host sends them with the body; off: the server writes them first',
      'on',
    )
    .option('--share <dir>', 'the share as the guest sees it', process.env.HYLICS_SHARE || GUEST_SHARE_DIR)
    .action(
      async (o: {
        root: string; port: string; host: string; offload: string; offloadMin: string; offloadHead: string;
        share: string;
      }) => {
        if (o.offload !== 'socket' && o.offload !== 'none')
          throw new HylicsError(
            'HYLICS_ERR_INVALID_ARGUMENT',
            `--offload must be socket or none, got ${JSON.stringify(o.offload)}`,
            { offload: o.offload },
          );
        if (o.offloadHead !== 'on' && o.offloadHead !== 'off')
          throw new HylicsError(
            'HYLICS_ERR_INVALID_ARGUMENT',
            `--offload-head must be on or off, got ${JSON.stringify(o.offloadHead)}`,
            { offloadHead: o.offloadHead },
          );
        const s = await startFileServer({
          root: o.root,
          port: intArg(o.port, '--port', 1, 65535),
          host: o.host,
          offload: o.offload,
          offloadMinBytes: intArg(o.offloadMin, '--offload-min', 0, Number.MAX_SAFE_INTEGER),
          offloadHead: o.offloadHead === 'on',
          share: o.share,
          log: (m) => process.stderr.write(`file-server: ${m}\n`),
        });
        process.stdout.write(`file-server: serving ${o.root} on ${o.host}:${o.port} (offload ${o.offload})\n`);
        const stop = (): void => {
          process.stderr.write(`file-server: ${JSON.stringify(s.stats)}\n`);
          void s.close().then(() => process.exit(0));
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
        await new Promise(() => undefined);
      },
    );
}
