#!/usr/bin/env node
// Bundles the start of the `hylics` command into one CommonJS file, dist/src/cli/main.cjs, which bin/hylics.js runs:
// src/cli/main.ts and the commander-free commands it runs itself (fast.ts: status, guest ls) with their imports.
// Node 20 starts a CommonJS file without its ES module loader and one file without resolving and reading twenty:
// the CLI's own start-up CPU time drops from about 65 to about 20 ms (bench/cli-latency, the "unbundled" row).
// Every other command is still imported lazily, from the tsc output beside the bundle (dist/src/cli/program.js ...):
// a dynamic import() outside fast.ts stays one, its path rewritten relative to the bundle.
// Input is tsc's output (dist/src), so run after tsc: `npm run build` and scripts/setup.mjs do.
//   node scripts/build-cli.mjs
import { build } from 'esbuild';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = join(root, 'dist', 'src', 'cli');
const entry = join(cliDir, 'main.js');
/** The one module whose dynamic imports are bundled: the fast commands. */
const FAST = join(cliDir, 'fast.js');

/** A dynamic import anywhere but fast.ts stays lazy: external, its path relative to the bundle (in cliDir). */
const lazyImports = {
  name: 'hylics-lazy-imports',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (a) => {
      if (a.kind !== 'dynamic-import' || a.importer === FAST) return undefined;
      const rel = relative(cliDir, resolve(a.resolveDir, a.path));
      return { path: rel.startsWith('.') ? rel : `./${rel}`, external: true };
    });
  },
};

export async function buildCli() {
  const r = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: join(cliDir, 'main.cjs'),
    // npm packages (commander, ...) are only reached through the lazy imports; none may slip into the bundle
    packages: 'external',
    plugins: [lazyImports],
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  return Object.values(r.metafile.outputs)[0].bytes;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const bytes = await buildCli();
  process.stdout.write(`dist/src/cli/main.cjs (${(bytes / 1024).toFixed(0)} KiB)\n`);
}
