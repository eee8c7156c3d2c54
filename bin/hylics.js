#!/usr/bin/env -S HYLICS_NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS} NODE_EXTRA_CA_CERTS= node
// The `hylics` command. CommonJS (bin/package.json) that requires the bundled CLI (dist/src/cli/main.cjs, made by
// `npm run build` / scripts/setup.mjs): on Node 20 a start without the ES module loader and with one file instead of
// twenty saves about two thirds of the CLI's own start-up (bench/cli-latency). Without the bundle (a tsc-only build)
// it runs the ES module form dist/src/cli/main.js. `./hylics` at the repository root sets HYLICS_RUN_SETUP so that
// the setup check (scripts/setup.mjs: stamp comparisons, installs and builds only what is stale) runs first, in this
// same process.
//
// The first line starts Node with NODE_EXTRA_CA_CERTS emptied (GNU env -S, coreutils 8.30 or later; ${...} is
// expanded by env itself): Node 20 reads and parses that certificate file at every start, before any code runs,
// about 55 ms of CPU for Debian's bundle (/etc/ssl/certs/ca-certificates.crt), a third of `hylics status`. No code of
// this process makes a TLS connection (the CLI talks HTTP to hylicsd, the daemon serves plain HTTP), so nothing
// here needs those certificates; the value is kept in HYLICS_NODE_EXTRA_CA_CERTS and put back below, first thing,
// so every process Hylics starts (npm in the setup check, guests, workers) inherits it unchanged. `node
// bin/hylics.js` (no shebang) skips all of this and pays the cost. docs/operations.md "CLI start-up".
'use strict';
const saved = process.env.HYLICS_NODE_EXTRA_CA_CERTS;
if (saved !== undefined) {
  delete process.env.HYLICS_NODE_EXTRA_CA_CERTS;
  if (saved === '') delete process.env.NODE_EXTRA_CA_CERTS; else process.env.NODE_EXTRA_CA_CERTS = saved;
}
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const cli = join(__dirname, '..', 'dist', 'src', 'cli');

function run() {
  if (existsSync(join(cli, 'main.cjs'))) require(join(cli, 'main.cjs'));
  else if (existsSync(join(cli, 'main.js'))) void import(join(cli, 'main.js'));
  else {
    process.stderr.write('error HYLICS_ERR_MISSING_DEPENDENCY: Hylics is not built: run `npm run setup` (or use ./hylics)\n');
    process.exitCode = 1;
  }
}

if (process.env.HYLICS_RUN_SETUP === '1') {
  delete process.env.HYLICS_RUN_SETUP;
  void import('../scripts/setup.mjs').then(({ setup }) => {
    setup({ quiet: true, cliOnly: true });
    run();
  });
} else run();
