// Entry point of the `hylics` command. bin/hylics.js runs it bundled as CommonJS (dist/src/cli/main.cjs, built by
// scripts/build-cli.mjs), hence no top-level await here. The most frequent calls (status, guest ls) skip commander
// (./fast.ts); everything else loads the full program.
import { runFast } from './fast.js';

void runFast(process.argv.slice(2)).then(async (done) => {
  if (!done) await (await import('./program.js')).main(process.argv);
});
