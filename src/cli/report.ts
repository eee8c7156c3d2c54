// How every `hylics` command reports a failure (host CLI and in-guest CLI alike).
import { HylicsError, toHylicsError } from '../core/errors/index.js';

/** Print an error the way every command does and set the exit status (1; 2 for usage errors). */
export function reportError(e: unknown, json: boolean): void {
  const err = e instanceof HylicsError ? e : toHylicsError(e);
  if (json) process.stdout.write(JSON.stringify({ error: err.toJSON() }) + '\n');
  else process.stderr.write(`error ${err.code}: ${err.message}\n`);
  process.exitCode = err.code === 'HYLICS_ERR_INVALID_ARGUMENT' || err.code === 'HYLICS_ERR_INVALID_NAME' || err.code === 'HYLICS_ERR_INVALID_SIZE' ? 2 : 1;
}
