// Entry point of the in-guest `hylics` command (the launcher the agent writes into /run/hylics/bin runs this).
// Only the guest-side commands: task, tier, module without GUEST (through the agent), offload sendfile. Only the
// command being run is loaded, and none of them loads the daemon, drivers or other host-only code: every
// millisecond of start-up counts in a microVM under emulation.
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import { reportError } from './report.js';
import { COMMANDS } from './commands/index.js';

export const GUEST_COMMANDS = ['task', 'tier', 'module', 'offload'];

const program = new Command('hylics')
  .description('Hylics inside a guest: tasks reported to the host, the tiered store, offload modules of this guest')
  .version(VERSION)
  .showHelpAfterError()
  .enablePositionalOptions()
  .exitOverride();
const entries = COMMANDS.filter((c) => GUEST_COMMANDS.includes(c.name));
const name = process.argv.slice(2).find((a) => !a.startsWith('-'));
const entry = entries.find((c) => c.name === name);
if (entry) (await entry.load()).register(program);
else for (const c of entries) program.command(c.name).description(c.summary);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    if (e.exitCode !== 0 && e.code !== 'commander.help' && e.code !== 'commander.helpDisplayed' && e.code !== 'commander.version') process.exitCode = 2;
  } else {
    reportError(e, process.argv.includes('--json'));
  }
}
