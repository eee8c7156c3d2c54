// The commands people and scripts run over and over against a running daemon (`hylics status`, `hylics guest ls`)
// without commander: its import alone costs about as much CPU as Node's own start-up (measured with
// bench/cli-latency). Only the exact forms below take this path: the command words plus the global options
// (--state-dir D, --state-dir=D, --api URL, --json, anywhere), and `hylics --version` (or -V) alone; anything else
// (--help, a typo, another option) goes to the full parser, which gives the same results and the usual errors.
import type { CommonOpts } from './commands/common.js';
import { VERSION } from '../core/version.js';

type Runner = (o: CommonOpts) => Promise<void>;
const FAST: Record<string, () => Promise<Runner>> = {
  status: async () => (await import('./commands/status.js')).status,
  'guest ls': async () => (await import('./commands/guest.js')).listGuests,
};
const VALUE = new Map([['--state-dir', 'stateDir'], ['--api', 'api']] as const);

/** The command's runner and options when argv (after `node hylics`) is one of the fast forms, else undefined. */
export function parseFast(args: string[]): { key: string; opts: CommonOpts } | undefined {
  const words: string[] = [];
  const opts: CommonOpts = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') { opts.json = true; continue; }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    const key = VALUE.get(name as '--state-dir' | '--api');
    if (key) {
      const v = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined || v === '' || (eq < 0 && v.startsWith('-'))) return undefined; // commander says what is wrong
      opts[key] = v;
      continue;
    }
    if (a.startsWith('-')) return undefined;
    words.push(a);
  }
  const key = words.join(' ');
  return key in FAST ? { key, opts } : undefined;
}

/** Run a fast form; false when argv is not one (the caller then runs the full CLI). */
export async function runFast(args: string[]): Promise<boolean> {
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
    process.stdout.write(`${VERSION}\n`); // as commander prints it
    return true;
  }
  const f = parseFast(args);
  if (!f) return false;
  const [run, client, report] = await Promise.all([FAST[f.key]!(), import('./client.js'), import('./report.js')]);
  try {
    client.useApiUrl(f.opts.api);
    await run(f.opts);
  } catch (e) {
    report.reportError(e, f.opts.json === true);
  }
  return true;
}
