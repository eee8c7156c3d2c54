// Host-wide memory budget arbitration: every guest's controller asks for a size; the host grants each at least
// its minimum and shares the rest by water-filling (nobody gets more than it asked for, the leftover goes to
// those still short, in proportion to their weights). Pure: the daemon feeds the results to setBudget().
import { HylicsError } from '../errors/index.js';
import { checkNumber } from './validate.js';

export interface BudgetRequest { id: string; wantBytes: number; minBytes: number; weight?: number }

export function arbitrateBudget(requests: readonly BudgetRequest[], budgetBytes: number): Map<string, number> {
  checkNumber('budgetBytes', budgetBytes, { min: 0 });
  const reqs = requests.map((r, i) => ({
    id: r.id,
    want: checkNumber(`requests[${i}].wantBytes`, r.wantBytes, { min: 0 }),
    min: checkNumber(`requests[${i}].minBytes`, r.minBytes, { min: 0 }),
    w: checkNumber(`requests[${i}].weight`, r.weight ?? 1, { min: 0, minExclusive: true }),
  }));
  const sumMin = reqs.reduce((s, r) => s + r.min, 0);
  if (sumMin > budgetBytes) {
    throw new HylicsError('HYLICS_ERR_CONTROL_BUDGET', `host budget ${budgetBytes} B is below the sum of minimum shares ${sumMin} B`, { budgetBytes, sumMin });
  }
  const grant = new Map<string, number>();
  for (const r of reqs) grant.set(r.id, r.min);
  let left = budgetBytes - sumMin;
  let active = reqs.filter((r) => Math.max(r.min, r.want) > r.min);
  while (left > 1e-6 && active.length > 0) {
    const wsum = active.reduce((s, r) => s + r.w, 0);
    let used = 0;
    const next: typeof active = [];
    for (const r of active) {
      const g = grant.get(r.id)!;
      const share = (left * r.w) / wsum;
      const need = Math.max(r.min, r.want) - g;
      const give = Math.min(share, need);
      grant.set(r.id, g + give);
      used += give;
      if (need - give > 1e-6) next.push(r);
    }
    left -= used;
    if (used <= 1e-9) break;
    active = next;
  }
  for (const [k, v] of grant) grant.set(k, Math.floor(v));
  return grant;
}
