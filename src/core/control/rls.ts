// Recursive least squares for the residual model of §5.1 (Eq. 3-10):
//   A(q⁻¹) y(k) = q⁻ᵈ B(q⁻¹) u(k),  A = 1 + a1 q⁻¹ + ... + a_nA q⁻ⁿᴬ,  B = b0 + ... + b_nB q⁻ⁿᴮ (b0 ≠ 0)
// written in regression form y(k) = θᵀ φ(k-d) with φ(j) = [y(j) .. y(j-nA+1), u(j) .. u(j-nB)] (Eq. 5-6), so
// θ = [-a1 .. -a_nA, b0 .. b_nB]. F and θ follow Eq. 8-9 (plus an optional forgetting factor and covariance
// reset), and the control law solves θᵀφ(k) = y*(k+d) for the one unknown in φ(k), u(k) (Eq. 10).
import { checkNumber } from './validate.js';
import { badSnapshot, num, nums, obj } from './snapshot.js';

export interface RlsSnapshot {
  theta: number[];
  F: number[][];
  ys: number[];
  us: number[];
  phis: number[][];
  resets: number;
  updates: number;
}

export interface RlsOptions {
  /** Order of A (number of past outputs in φ). Paper: 1. */
  nA?: number;
  /** Order of B (past inputs beyond u(k) in φ). Paper: 0. */
  nB?: number;
  /** Delay d >= 1 between an input and its first effect. Paper: 1. */
  d?: number;
  /** F(-1) = f0·I, f0 > 0. */
  f0?: number;
  /** Initial θ (length nA + nB + 1); default zeros with b0 = b0Init. */
  theta0?: number[];
  /** Initial b0 when theta0 is not given (must be non-zero for the control law to act at all). */
  b0Init?: number;
  /** Forgetting factor in (0, 1]; 1 = the paper's plain RLS. */
  forgetting?: number;
  /** Reset F to f0·I when |prediction error| exceeds this (abrupt change); Infinity = never. */
  resetOnError?: number;
  /** Cap on trace(F) (guards wind-up under forgetting without excitation). */
  maxTrace?: number;
  /**
   * Sign constraint on b0: -1 keeps b0 <= -minGain (more memory can only lower the response time), +1 keeps
   * b0 >= minGain, 0 leaves it free (the paper).
   */
  gainSign?: -1 | 0 | 1;
  minGain?: number;
}

export class Rls {
  readonly nA: number;
  readonly nB: number;
  readonly d: number;
  readonly f0: number;
  readonly forgetting: number;
  readonly resetOnError: number;
  readonly maxTrace: number;
  readonly gainSign: -1 | 0 | 1;
  readonly minGain: number;
  readonly n: number;
  theta: number[];
  F: number[][];
  private ys: number[] = []; // y(k), y(k-1), ... newest first
  private us: number[] = []; // u(k-1), u(k-2), ... newest first (applied inputs)
  private phis: number[][] = []; // φ(k-1), φ(k-2), ... newest first
  resets = 0;
  updates = 0;
  lastError = 0;

  constructor(opts: RlsOptions = {}) {
    this.nA = checkNumber('nA', opts.nA ?? 1, { min: 0, max: 8, integer: true });
    this.nB = checkNumber('nB', opts.nB ?? 0, { min: 0, max: 8, integer: true });
    this.d = checkNumber('d', opts.d ?? 1, { min: 1, max: 8, integer: true });
    this.f0 = checkNumber('f0', opts.f0 ?? 1000, { min: 0, minExclusive: true, max: 1e12 });
    this.forgetting = checkNumber('forgetting', opts.forgetting ?? 1, { min: 0.5, max: 1 });
    this.resetOnError = opts.resetOnError === undefined || opts.resetOnError === Infinity ? Infinity : checkNumber('resetOnError', opts.resetOnError, { min: 0, minExclusive: true });
    this.maxTrace = opts.maxTrace === undefined || opts.maxTrace === Infinity ? Infinity : checkNumber('maxTrace', opts.maxTrace, { min: 0, minExclusive: true });
    this.gainSign = opts.gainSign ?? 0;
    if (![-1, 0, 1].includes(this.gainSign)) checkNumber('gainSign', this.gainSign, { min: -1, max: 1, integer: true });
    this.minGain = checkNumber('minGain', opts.minGain ?? 1e-6, { min: 0, minExclusive: true });
    this.n = this.nA + this.nB + 1;
    if (opts.theta0 !== undefined) {
      if (!Array.isArray(opts.theta0) || opts.theta0.length !== this.n) checkNumber('theta0 length', Array.isArray(opts.theta0) ? opts.theta0.length : NaN, { min: this.n, max: this.n, integer: true });
      this.theta = opts.theta0.map((v, i) => checkNumber(`theta0[${i}]`, v));
    } else {
      this.theta = new Array<number>(this.n).fill(0);
      this.theta[this.nA] = checkNumber('b0Init', opts.b0Init ?? -0.01);
    }
    this.F = identity(this.n, this.f0);
    this.project();
  }

  /** The learned state (θ, F and the regressor history) as JSON, for a controller snapshot. */
  snapshot(): RlsSnapshot {
    return {
      theta: [...this.theta],
      F: this.F.map((r) => [...r]),
      ys: [...this.ys],
      us: [...this.us],
      phis: this.phis.map((p) => [...p]),
      resets: this.resets,
      updates: this.updates,
    };
  }

  /** Back from snapshot(): every field checked against this RLS's orders first; nothing changes on a bad one. */
  restore(v: unknown): void {
    const o = obj('rls', v);
    const theta = nums('rls.theta', o.theta, this.n);
    if (!Array.isArray(o.F) || o.F.length !== this.n) badSnapshot('rls.F', o.F);
    const F = (o.F as unknown[]).map((r, i) => nums(`rls.F[${i}]`, r, this.n));
    const ys = nums('rls.ys', o.ys);
    const us = nums('rls.us', o.us);
    if (ys.length > this.nA + this.d + 1 || us.length > this.nB + 1) badSnapshot('rls.ys/us', [ys.length, us.length]);
    if (!Array.isArray(o.phis) || o.phis.length > this.d) badSnapshot('rls.phis', o.phis);
    const phis = (o.phis as unknown[]).map((p, i) => nums(`rls.phis[${i}]`, p, this.n));
    const resets = num('rls.resets', o.resets, { min: 0, integer: true });
    const updates = num('rls.updates', o.updates, { min: 0, integer: true });
    this.theta = theta;
    this.F = F;
    this.ys = ys;
    this.us = us;
    this.phis = phis;
    this.resets = resets;
    this.updates = updates;
    this.project();
  }

  /** b0, the gain of the newest input. */
  get b0(): number { return this.theta[this.nA]!; }

  /** Covariance reset: F = f0·I (keeps θ). */
  resetCovariance(): void {
    this.F = identity(this.n, this.f0);
    this.resets++;
  }

  /**
   * Feed y(k). Updates θ with φ(k-d) (Eq. 8-9) when enough history exists; returns the a-priori prediction
   * error y(k) - θᵀφ(k-d) (0 when no update was possible). Non-finite y is ignored.
   */
  update(y: number): number {
    if (!Number.isFinite(y)) return 0;
    this.ys.unshift(y);
    if (this.ys.length > this.nA + this.d + 1) this.ys.length = this.nA + this.d + 1;
    const phi = this.phis[this.d - 1];
    if (phi === undefined) return 0;
    const Fphi = matVec(this.F, phi);
    const denom = this.forgetting + dot(phi, Fphi);
    const err = y - dot(this.theta, phi);
    this.lastError = err;
    if (!(denom > 0) || !Number.isFinite(denom) || !Number.isFinite(err)) { this.resetCovariance(); return 0; }
    // θ(k) = θ(k-1) + F(k-1) φ err with F(k-1) from Eq. 8: F φ / (λ + φᵀ F φ)
    for (let i = 0; i < this.n; i++) this.theta[i]! += (Fphi[i]! / denom) * err;
    for (let i = 0; i < this.n; i++) {
      for (let j = 0; j < this.n; j++)
        this.F[i]![j] = (this.F[i]![j]! - (Fphi[i]! * Fphi[j]!) / denom) / this.forgetting;
    }
    this.updates++;
    let tr = 0;
    for (let i = 0; i < this.n; i++) tr += this.F[i]![i]!;
    if (!this.theta.every(Number.isFinite) || !Number.isFinite(tr)) {
      this.theta = this.theta.map((v) => (Number.isFinite(v) ? v : 0));
      this.resetCovariance();
    } else if (tr > this.maxTrace) {
      const s = this.maxTrace / tr;
      for (const row of this.F) for (let j = 0; j < this.n; j++) row[j]! *= s;
    }
    if (Math.abs(err) > this.resetOnError) this.resetCovariance();
    this.project();
    return err;
  }

  /** φ(k) with u(k) = u: the newest nA outputs, then u(k) and the nB previous inputs. */
  private regressor(u: number): number[] {
    const phi: number[] = [];
    for (let i = 0; i < this.nA; i++) phi.push(this.ys[i] ?? 0);
    phi.push(u);
    for (let j = 0; j < this.nB; j++) phi.push(this.us[j] ?? 0);
    return phi;
  }

  /**
   * The control law (Eq. 10): u(k) such that θᵀφ(k) = yStar. Returns null when |b0| is below minGain (the
   * model says the input has no effect, so any u would be noise amplification).
   */
  solveInput(yStar = 0): number | null {
    const b0 = this.b0;
    if (!(Math.abs(b0) >= this.minGain)) return null;
    const rest = dot(this.theta, this.regressor(0));
    const u = (yStar - rest) / b0;
    return Number.isFinite(u) ? u : null;
  }

  /** Predicted y(k+d) if u(k) = u. */
  predict(u: number): number { return dot(this.theta, this.regressor(u)); }

  /** Record the input actually applied at step k (after clamping) so φ(k) is exact for the next update. */
  commit(u: number): void {
    const uu = Number.isFinite(u) ? u : 0;
    this.phis.unshift(this.regressor(uu));
    if (this.phis.length > this.d) this.phis.length = this.d;
    this.us.unshift(uu);
    if (this.us.length > this.nB + 1) this.us.length = this.nB + 1;
  }

  private project(): void {
    if (this.gainSign === 0) return;
    const b0 = this.theta[this.nA]!;
    if (this.gainSign < 0 && b0 > -this.minGain) this.theta[this.nA] = -this.minGain;
    if (this.gainSign > 0 && b0 < this.minGain) this.theta[this.nA] = this.minGain;
  }
}

function identity(n: number, v: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? v : 0)));
}
function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
function matVec(m: readonly number[][], v: readonly number[]): number[] {
  return m.map((row) => dot(row, v));
}
