// The decision log of a guest on disk: <state-dir>/guests/<name>/control-log.json (bounded, written atomically
// after each decision), so `hylics control log` still explains the past after a daemon restart.
import { join } from 'node:path';
import type { DecisionEntry } from '../../core/control-api.js';
import { readFileIfExists, writeFileAtomic } from '../../os/atomic-file.js';

const FILE = 'control-log.json';

export async function saveDecisionLog(guestDir: string, entries: DecisionEntry[]): Promise<void> {
  await writeFileAtomic(join(guestDir, FILE), JSON.stringify(entries));
}

export async function loadDecisionLog(guestDir: string): Promise<DecisionEntry[]> {
  const text = await readFileIfExists(join(guestDir, FILE));
  if (text === undefined) return [];
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? (v as DecisionEntry[]) : [];
  } catch { return []; } // a torn or foreign file: the log starts again (decisions are also in the daemon log)
}
