// `hylics image build`: builds (or finds in the cache) the microVM guest image under <state-dir>/images/.
// Runs locally, not through hylicsd: it is a build step (apt-get download, dpkg -x, depmod, cpio) that the
// daemon also does on demand when a microvm guest starts without an image.
import type { Command } from 'commander';
import { buildImage } from '../../os/image/build.js';

interface ImageOpts { stateDir?: string; json?: boolean; force?: boolean }

export function register(program: Command): void {
  const image = program.command('image').description('the microVM guest image (Debian kernel + busybox initramfs)');
  image.command('build')
    .description('build the guest image if its inputs changed (kernel package, busybox, init), with progress on stderr')
    .option('--state-dir <dir>', 'hylicsd state directory (env HYLICS_STATE_DIR, default /var/lib/hylics)')
    .option('--json', 'print JSON instead of text')
    .option('--force', 'rebuild even when an image with the same inputs is cached')
    .action(async (o: ImageOpts) => {
      const img = await buildImage({ stateDir: o.stateDir ?? process.env.HYLICS_STATE_DIR ?? '/var/lib/hylics', force: o.force, onProgress: (m) => process.stderr.write(`[image] ${m}\n`) });
      if (o.json) process.stdout.write(JSON.stringify(img, null, 2) + '\n');
      else process.stdout.write(`${img.built ? 'built' : 'cached'} ${img.hash}: ${img.kernelPackage} ${img.kernelVersion}\n  kernel ${img.kernel}\n  initrd ${img.initrd}\n`);
    });
}
