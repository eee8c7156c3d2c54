// How every `hylics` command reports a failure (host CLI and in-guest CLI alike).
import { HylicsError, toHylicsError } from '../core/errors/index.js';

/** Print an error the way every command does and set the exit status (the error registry's, docs/errors.md). */
export function reportError(e: unknown, json: boolean): void {
  const err = e instanceof HylicsError ? e : toHylicsError(e);
  if (json) process.stdout.write(JSON.stringify({ error: err.toJSON() }) + '\n');
  else process.stderr.write(`error ${err.code}: ${err.message}\n`);
  process.exitCode = err.exitCode;
}
