// The host share budget (hylics daemon --share-budget 8G): when what the guests' controllers want adds up to more
// than the budget, each guest first gets its min; the rest is shared by water-filling in proportion to each
// guest's predicted SLO deficit (how far above its SLO the model predicts it at its min share), never above what
// it asked for. A guest whose model predicts no deficit gets a small weight, so it still gets what is left.
import { arbitrateBudget, ServiceModel, type ServiceModelParams } from '../../core/control/index.js';
import { MiB } from '../../core/units.js';

/** Weight of a guest the model predicts meets its SLO even at its min (it still shares the leftover). */
export const NO_DEFICIT_WEIGHT = 0.01;
/** Cap of the deficit weight (a saturated guest predicts an infinite response time). */
export const MAX_DEFICIT_WEIGHT = 100;

export interface BudgetWish {
  guest: string;
  wantBytes: number;
  minBytes: number;
  sloMs: number;
  lambda: number;
  model: ServiceModelParams;
}

/** Relative SLO deficit predicted at the guest's min share: max(0, R̂(min) − τ) / τ, bounded. */
export function deficitWeight(w: BudgetWish): number {
  const tau = w.sloMs / 1000;
  const r = new ServiceModel(w.model).responseTime(w.minBytes / MiB, w.lambda);
  const d = Number.isFinite(r) ? (r - tau) / tau : MAX_DEFICIT_WEIGHT;
  return Math.min(MAX_DEFICIT_WEIGHT, Math.max(NO_DEFICIT_WEIGHT, d));
}

export interface BudgetGrant { grantBytes: number; weight: number; limited: boolean }

/** Grants per guest; `limited` when the budget (not the controller) decided. Sum of grants <= budget. */
export function shareBudget(wishes: readonly BudgetWish[], budgetBytes: number): Map<string, BudgetGrant> {
  const out = new Map<string, BudgetGrant>();
  const total = wishes.reduce((s, w) => s + Math.max(w.wantBytes, w.minBytes), 0);
  if (total <= budgetBytes) {
    for (const w of wishes)
      out.set(w.guest, { grantBytes: Math.max(w.wantBytes, w.minBytes), weight: 1, limited: false });
    return out;
  }
  const weights = new Map(wishes.map((w) => [w.guest, deficitWeight(w)]));
  const grants = arbitrateBudget(
    wishes.map((w) => ({ id: w.guest, wantBytes: w.wantBytes, minBytes: w.minBytes, weight: weights.get(w.guest)! })),
    budgetBytes,
  );
  for (const w of wishes) {
    const g = grants.get(w.guest)!;
    out.set(w.guest, { grantBytes: g, weight: weights.get(w.guest)!, limited: g < Math.max(w.wantBytes, w.minBytes) });
  }
  return out;
}
