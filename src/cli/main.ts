// Entry point of the `hylics` command (bin/hylics.js imports the compiled form).
import { main } from './program.js';

await main(process.argv);
