#!/usr/bin/env node
// The `hylics` command. Runs the compiled CLI; `./hylics` at the repository root also installs and builds first.
import { existsSync } from 'node:fs';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('error HYLICS_ERR_MISSING_DEPENDENCY: Hylics is not built: run `npm run setup` (or use ./hylics)\n');
  process.exit(1);
}
await import(main.href);
