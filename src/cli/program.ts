// The `hylics` CLI: thin. It parses argv (commander: well kept, subcommands, help), calls the host HTTP API or
// the guest agent, and prints text or --json. Each area registers its commands from ./commands/.
import { Command, CommanderError } from 'commander';
import { HylicsError, toHylicsError } from '../core/errors/index.js';
import { COMMANDS } from './commands/index.js';

export function buildProgram(): Command {
  const program = new Command('hylics')
    .description('Hylics: host-kept shared in-memory file systems, network-send offload and SLO-aware share control for guests')
    .version('0.1.0')
    .showHelpAfterError()
    .enablePositionalOptions()
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

/** Print an error the way every command does and set the exit status (1; 2 for usage errors). */
export function reportError(e: unknown, json: boolean): void {
  const err = e instanceof HylicsError ? e : toHylicsError(e);
  if (json) process.stdout.write(JSON.stringify({ error: err.toJSON() }) + '\n');
  else process.stderr.write(`error ${err.code}: ${err.message}\n`);
  process.exitCode = err.code === 'HYLICS_ERR_INVALID_ARGUMENT' || err.code === 'HYLICS_ERR_INVALID_NAME' || err.code === 'HYLICS_ERR_INVALID_SIZE' ? 2 : 1;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode !== 0 && e.code !== 'commander.help' && e.code !== 'commander.helpDisplayed' && e.code !== 'commander.version') process.exitCode = 2;
      return;
    }
    reportError(e, argv.includes('--json'));
  }
}
