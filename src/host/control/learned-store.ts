// What a guest's control loop has learned, on disk: <state-dir>/guests/<name>/control-learned.json (written
// atomically after each decision, and when the guest reports a new task name), so a restarted daemon resumes the
// controller where it was (λ, the online E[X|m] offset, RLS state, interval) instead of starting cold, and still
// knows the task names the guest reported (the unknown-task check of `control set`). docs/controller.md.
import { join } from 'node:path';
import type { ControllerSnapshot } from '../../core/control/index.js';
import { readFileIfExists, writeFileAtomic } from '../../os/atomic-file.js';

const FILE = 'control-learned.json';
export const LEARNED_VERSION = 1;

export interface LearnedState {
  v: number;
  /** Epoch ms of the save. */
  savedAt: number;
  /** The settings and E[X|m] the controller ran with (a snapshot resumes only the same controller), or null. */
  key: string | null;
  controller: ControllerSnapshot | null;
  /** The loop's per-task arrival-rate estimates (the hylics_task_arrival_rate gauges). */
  taskRates: Record<string, number | null>;
  /** Task names the guest has reported. */
  tasks: string[];
}

export async function saveLearned(guestDir: string, s: LearnedState): Promise<void> {
  await writeFileAtomic(join(guestDir, FILE), JSON.stringify(s));
}

/** The saved state, or undefined when there is none or it is not ours (the loop then starts cold). */
export async function loadLearned(guestDir: string): Promise<LearnedState | undefined> {
  const text = await readFileIfExists(join(guestDir, FILE));
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as Partial<LearnedState>;
    if (v?.v !== LEARNED_VERSION || typeof v.savedAt !== 'number' || !Array.isArray(v.tasks) || typeof v.taskRates !== 'object' || v.taskRates === null) return undefined;
    return v as LearnedState;
  } catch { return undefined; } // torn or foreign: start cold (the controller re-learns in a few intervals)
}
