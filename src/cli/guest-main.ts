// Entry point of the in-guest `hylics` command (the launcher the agent writes into /run/hylics/bin runs this).
// Only the guest-side commands: task, tier, and module without GUEST (through the agent). It never loads the
// daemon, drivers or other host-only code, so it starts fast and needs nothing the guest does not have.
import { Command, CommanderError } from 'commander';
import { reportError } from './report.js';
import { register as task } from './commands/task.js';
import { register as tier } from './commands/tier.js';
import { register as module } from './commands/module.js';

const program = new Command('hylics')
  .description('Hylics inside a guest: tasks reported to the host, the tiered store, offload modules of this guest')
  .version('0.1.0')
  .showHelpAfterError()
  .enablePositionalOptions()
  .exitOverride();
for (const register of [task, tier, module]) register(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    if (e.exitCode !== 0 && e.code !== 'commander.help' && e.code !== 'commander.helpDisplayed' && e.code !== 'commander.version') process.exitCode = 2;
  } else {
    reportError(e, process.argv.includes('--json'));
  }
}
