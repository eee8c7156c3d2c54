// The logs in <state-dir>/guests/NAME/logs that guests fill (console.log and qemu.log/virtiofsd.log of a
// microVM, sandbox.log of a sandbox guest): tails for `guest console` and error messages, and a capper that
// keeps each file under its cap (one rotated copy, NAME.log.1) while the daemon runs.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { capLog, GUEST_LOG_MAX_BYTES, tailLines } from '../os/log-file.js';

/** How often every guest log is checked against its cap: a guest can write at most this long past it. */
export const LOG_CAP_INTERVAL_MS = 2000;

async function logFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith('.log')).sort();
  } catch {
    return [];
  }
}

/** The last `lines` lines of every log the guest's driver writes (read from the end; the rotated copy when needed). */
export async function guestLogTail(dir: string, lines: number): Promise<string> {
  const out: string[] = [];
  for (const f of await logFiles(dir)) {
    let got = await tailLines(join(dir, f), lines);
    if (got.length < lines) got = [...(await tailLines(join(dir, `${f}.1`), lines - got.length)), ...got];
    out.push(`--- ${f}`, ...got);
  }
  return out.join('\n');
}

/** Cap every guest's logs now (each *.log under guests/NAME/logs). */
export async function capGuestLogs(stateDir: string, maxBytes: number, log?: Logger): Promise<number> {
  let rotated = 0;
  const guests = join(stateDir, 'guests');
  let names: string[] = [];
  try { names = await readdir(guests); } catch { return 0; }
  for (const g of names) {
    const dir = join(guests, g, 'logs');
    for (const f of await logFiles(dir)) {
      try {
        if (await capLog(join(dir, f), maxBytes)) {
          rotated++;
          log?.info({ guest: g, file: f, maxBytes }, 'guest log over its cap: rotated');
        }
      } catch (e) {
        log?.warn({ guest: g, file: f, err: String(e) }, 'could not rotate a guest log');
      }
    }
  }
  return rotated;
}

/** Check every LOG_CAP_INTERVAL_MS until stopped. */
export function startLogCapper(stateDir: string, log: Logger, maxBytes = GUEST_LOG_MAX_BYTES): () => void {
  let busy = false;
  const t = setInterval(() => {
    if (busy) return;
    busy = true;
    void capGuestLogs(stateDir, maxBytes, log).finally(() => { busy = false; });
  }, LOG_CAP_INTERVAL_MS);
  t.unref();
  return () => clearInterval(t);
}
