// The `hylics` CLI: thin. It parses argv (commander: well kept, subcommands, help), calls the host HTTP API or
// the guest agent, and prints text or --json. Each area registers its commands from ./commands/; only the
// command being run is loaded (./commands/index.ts), so a call to a running daemon starts in tens of ms.
import { Command, CommanderError } from 'commander';
import { reportError } from './report.js';
import { COMMANDS, type CommandEntry } from './commands/index.js';
import { GLOBAL_OPTIONS, type CommonOpts } from './commands/common.js';
import { useApiUrl } from './client.js';
import { VERSION } from '../core/version.js';

/** Global options that take a value: their value is not a command name when argv is scanned for one. */
const VALUE_OPTIONS = new Set(GLOBAL_OPTIONS.filter((o) => o.flags.includes('<')).map((o) => o.flags.split(/[ ,]/)[0]!));

/** The top-level command argv names (`hylics --state-dir D guest ls` -> guest; `hylics help guest` -> guest). */
export function commandName(args: string[]): string | undefined {
  const operands: string[] = [];
  for (let i = 0; i < args.length && operands.length < 2; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) { if (VALUE_OPTIONS.has(a)) i++; continue; }
    operands.push(a);
  }
  return operands[0] === 'help' ? operands[1] : operands[0];
}

/** Give every command the global options (they go anywhere, as in kubectl and docker), unless it has its own. */
function addGlobalOptions(cmd: Command): void {
  for (const o of GLOBAL_OPTIONS) {
    const long = o.flags.split(/[ ,]/).find((f) => f.startsWith('--'));
    if (!cmd.options.some((x) => x.long === long)) cmd.option(o.flags, o.description);
  }
  for (const sub of cmd.commands) addGlobalOptions(sub);
}

/** A global option given before the command (`hylics --state-dir D guest ls`) reaches the command's options;
 * the one nearest the command wins when it is given twice. */
function inheritGlobals(action: Command): void {
  for (const o of GLOBAL_OPTIONS) {
    const key = o.flags.split(/[ ,]/).find((f) => f.startsWith('--'))!.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    for (let c: Command | null = action; c; c = c.parent) {
      const v: unknown = c.getOptionValue(key);
      if (v !== undefined) {
        if (c !== action) action.setOptionValueWithSource(key, v, c.getOptionValueSource(key));
        break;
      }
    }
  }
}

/** The program with the command named in argv loaded (or, for help and unknown names, every command's summary). */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command('hylics')
    .description('Hylics: host-kept shared in-memory file systems, network-send offload and SLO-aware share control for guests')
    .version(VERSION)
    .showHelpAfterError()
    .enablePositionalOptions()
    .exitOverride();
  const name = commandName(argv.slice(2));
  const entry: CommandEntry | undefined = COMMANDS.find((c) => c.name === name);
  if (entry) (await entry.load()).register(program);
  else for (const c of COMMANDS) program.command(c.name).description(c.summary);
  addGlobalOptions(program);
  program.hook('preAction', (_root, action) => {
    inheritGlobals(action);
    useApiUrl((action.opts() as CommonOpts).api);
  });
  return program;
}

/** Every command with its module loaded (for tests and generated docs). */
export async function buildFullProgram(): Promise<Command> {
  const program = new Command('hylics').version(VERSION).enablePositionalOptions().exitOverride();
  for (const c of COMMANDS) (await c.load()).register(program);
  addGlobalOptions(program);
  return program;
}

export { reportError };

export async function main(argv: string[]): Promise<void> {
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode !== 0 && e.code !== 'commander.help' && e.code !== 'commander.helpDisplayed' && e.code !== 'commander.version') process.exitCode = 2;
      return;
    }
    reportError(e, argv.includes('--json'));
  }
}
