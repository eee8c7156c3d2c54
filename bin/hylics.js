#!/usr/bin/env node
// The `hylics` command. Runs the compiled CLI; `./hylics` at the repository root sets HYLICS_RUN_SETUP so that the
// setup check (scripts/setup.mjs: stamp comparisons, installs and builds only what is stale) runs first, in this
// same process.
import { existsSync } from 'node:fs';

if (process.env.HYLICS_RUN_SETUP === '1') {
  delete process.env.HYLICS_RUN_SETUP;
  const { setup } = await import('../scripts/setup.mjs');
  setup({ quiet: true, cliOnly: true });
}
const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('error HYLICS_ERR_MISSING_DEPENDENCY: Hylics is not built: run `npm run setup` (or use ./hylics)\n');
  process.exit(1);
}
await import(main.href);
