// The guest's per-task cost inside a real run (docs/controller.md, "The simulator on workload #2"): the tasks that
// overlapped no other task ran without queueing or CPU sharing, so their response time is what a task cost the guest
// at that moment; their mean ratio to the alone figures measured before the runs says how far the guest drifted.

export interface TaskSpan { arrivalS: number; responseS: number }

/** The tasks whose [arrival, arrival + response) overlaps no other task's (in arrival order). */
export function loneTasks<T extends TaskSpan>(tasks: readonly T[]): T[] {
  const s = [...tasks].sort((a, b) => a.arrivalS - b.arrivalS);
  const out: T[] = [];
  let maxEnd = -Infinity; // latest end among the tasks that arrived before
  for (let i = 0; i < s.length; i++) {
    const t = s[i]!;
    const end = t.arrivalS + t.responseS;
    const next = s[i + 1];
    if (maxEnd <= t.arrivalS && (next === undefined || next.arrivalS >= end)) out.push(t);
    if (end > maxEnd) maxEnd = end;
  }
  return out;
}

/**
 * Mean of response / base(task) over the lone tasks (base = the alone figure of the path the task took): 1 when the
 * guest cost what its alone runs said, 1.2 when it was 20 % slower. No lone task: scale 1, n 0.
 */
export function loneCostScale<T extends TaskSpan>(
  tasks: readonly T[],
  base: (t: T) => number,
): { scale: number; n: number } {
  const lone = loneTasks(tasks).filter((t) => base(t) > 0 && Number.isFinite(t.responseS));
  if (lone.length === 0) return { scale: 1, n: 0 };
  return { scale: lone.reduce((a, t) => a + t.responseS / base(t), 0) / lone.length, n: lone.length };
}
