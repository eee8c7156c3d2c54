// Entry point of the `hylics` command (bin/hylics.js imports the compiled form). The most frequent calls
// (status, guest ls) skip commander (./fast.ts); everything else loads the full program.
import { runFast } from './fast.js';

if (!(await runFast(process.argv.slice(2)))) await (await import('./program.js')).main(process.argv);
