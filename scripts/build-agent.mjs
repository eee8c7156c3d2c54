#!/usr/bin/env node
// Bundles the guest agent into one file for ordinary Debian/Ubuntu guests (VMs Hylics did not start, e.g. libvirt
// domains given a share and channel by `hylics guest adopt`): esbuild (the bundler tsx already brings) follows the
// imports of src/guest/agent-main.ts, so the guest needs only Node.js, no node_modules and no checkout.
//   node scripts/build-agent.mjs [OUT]     (default dist/agent/hylics-agent.mjs)
// Install in the guest: contrib/guest/ (systemd unit, cloud-init snippet) and docs/microvm.md.
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(root, 'dist', 'agent', 'hylics-agent.mjs'));
mkdirSync(dirname(out), { recursive: true });
const r = await build({
  entryPoints: [join(root, 'src', 'guest', 'agent-main.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node18',
  outfile: out,
  // CommonJS dependencies (pino, ajv) call require(): give the ES module one
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __hylicsRequire } from 'node:module'; const require = __hylicsRequire(import.meta.url);" },
  minifySyntax: true,
  legalComments: 'eof',
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.values(r.metafile.outputs)[0].bytes;
process.stdout.write(`${out} (${(bytes / 1024).toFixed(0)} KiB)\n`);
