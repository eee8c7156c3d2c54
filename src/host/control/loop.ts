// The control loop in hylicsd (paper §5 running, issue #9): per guest, every control interval, the profiler's
// interval (arrivals, response times, tier hits) and the share's usage become a Measurement for core's
// ShareController (the same class and policies as the simulator, no second copy); its decision is bounded by the
// host share budget, carried out by the orchestrator, and written to a bounded decision log with every input.
// Guests without settings (or scheme off) are still profiled, every PROFILE_PERIOD_MS. The clock is injected so
// tests drive the loop with a fake one.
import type { Logger } from 'pino';
import { ArrivalRateEstimator, ServiceModel, ShareController, type ServiceModelParams } from '../../core/control/index.js';
import { HylicsError, toHylicsError } from '../../core/errors/index.js';
import type { ControlView, DecisionEntry, ProfilePoint } from '../../core/control-api.js';
import { MAX_TASK_NAMES, type Profiler } from '../profiler.js';
import { shareBudget, type BudgetWish } from './budget-rule.js';
import type { ControlMetrics } from './metrics.js';
import { Orchestrator, isMissingOp, type OrchestratorDeps } from './orchestrator.js';
import { modelFor, type ControlRecord, type ControlSettings } from './settings.js';
import { LEARNED_VERSION, type LearnedState } from './learned-store.js';
import { MiB } from '../../core/units.js';

/** Decisions kept per guest (the log of `hylics control log`), and profile points (the JSON time series). */
export const DECISION_LOG_MAX = 500;
export const PROFILE_MAX = 1440;
/** How often a guest without a controller is profiled. */
export const PROFILE_PERIOD_MS = 10_000;
/** How long tier.stats may take before the sample goes without it. */
export const TIER_STATS_TIMEOUT_MS = 2000;
/** The improved scheme's longest interval is the guest tier's idle-eviction window (docs/controller.md). */
const IMPROVED_CI_MAX_S = 60;
/**
 * Algorithm 1's m_thresh on a real guest: 5 % of the guest's max share, between 1 MiB and the simulator's 10 MiB
 * (one segment there): a fixed 10 MiB would freeze a small share (a 40 % shrink step of 18 MiB is 7 MiB).
 */
export function actuationThreshold(maxBytes: number): number {
  return Math.min(10 * MiB, Math.max(1 * MiB, Math.round(maxBytes * 0.05)));
}
/** A learned state older than this is not resumed (the load it describes is long gone): the controller starts cold. */
export const MAX_RESUME_AGE_MS = 86_400_000;
/** Half-life of the per-task arrival-rate gauges (s), as Algorithm 1's λ. */
const ARRIVAL_HALF_LIFE_S = 60;

export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface LoopDeps extends OrchestratorDeps {
  clock: Clock;
  profiler: Profiler;
  log: Logger;
  metrics?: ControlMetrics;
  /** Host share budget (bytes) or null. */
  budgetBytes: number | null;
  /** CPU time the guest has used (s), null when unknown. */
  cpuSeconds(guest: string): Promise<number | null>;
  /** Persist the decision log (bounded) so it survives a restart; load it back on attach. */
  saveLog?(guest: string, entries: DecisionEntry[]): Promise<void>;
  loadLog?(guest: string): Promise<DecisionEntry[]>;
  /** Persist what the loop learned (controller snapshot, rates, task names); load it back on a resumed attach. */
  saveLearned?(guest: string, s: LearnedState): Promise<void>;
  loadLearned?(guest: string): Promise<LearnedState | undefined>;
}

interface TierCounts { evictions: number; promotions: number; hits: number; misses: number }

interface Entry {
  guest: string;
  settings: ControlSettings | null;
  calibration: ControlRecord['calibration'];
  ctl: ShareController | null;
  model: ServiceModel | null;
  calibrated: boolean;
  /** The first decision after attach says why the loop (re)started. */
  startNote: string;
  startedAt: number;
  lastTickAt: number;
  timer?: unknown;
  nextAt: number | null;
  intervalMs: number;
  ticking: boolean;
  paused: boolean;
  decisions: DecisionEntry[];
  profile: ProfilePoint[];
  tier: TierCounts | null;
  tierOps: boolean | undefined;
  evictions: number;
  promotions: number;
  cpu: number | null;
  wish: number;
  lambda: number;
  taskRates: Map<string, ArrivalRateEstimator>;
  /** Task names the guest reported (also before a daemon restart), and the list last persisted. */
  knownTasks: Set<string>;
  savedTasks: string;
  /** The state saved before a daemon restart, resumed by the first configure() if the settings are the same. */
  learned: LearnedState | undefined;
  closed: boolean;
}

/** What a snapshot is valid for: the same settings and the same E[X|m]. */
const learnedKey = (s: ControlSettings, m: ServiceModelParams): string =>
  JSON.stringify([s.scheme, s.sloMs, s.task, s.minBytes, s.maxBytes, s.intervalMinMs, s.intervalMaxMs, m.a, m.b, m.c]);

const push = <T,>(ring: T[], v: T, max: number): void => {
  ring.push(v);
  if (ring.length > max) ring.splice(0, ring.length - max);
};

export class ControlLoop {
  private readonly entries = new Map<string, Entry>();
  private readonly orch: Orchestrator;

  constructor(private readonly deps: LoopDeps) {
    this.orch = new Orchestrator(deps);
  }

  get budgetBytes(): number | null { return this.deps.budgetBytes; }

  /** Start profiling (and controlling, with settings) a running guest; `resumed`: after a daemon restart. */
  async attach(guest: string, record: ControlRecord | undefined, opts: { resumed?: boolean } = {}): Promise<void> {
    this.detach(guest);
    const now = this.deps.clock.now();
    const e: Entry = {
      guest,
      settings: null,
      calibration: record?.calibration,
      ctl: null,
      model: null,
      calibrated: false,
      startNote: '',
      startedAt: now,
      lastTickAt: now,
      nextAt: null,
      intervalMs: PROFILE_PERIOD_MS,
      ticking: false,
      paused: false,
      decisions: [],
      profile: [],
      tier: null,
      tierOps: undefined,
      evictions: 0,
      promotions: 0,
      cpu: null,
      wish: 0,
      lambda: 0,
      taskRates: new Map(),
      knownTasks: new Set(),
      savedTasks: '',
      learned: undefined,
      closed: false,
    };
    this.entries.set(guest, e);
    if (this.deps.loadLog) e.decisions = (await this.deps.loadLog(guest).catch(() => [])).slice(-DECISION_LOG_MAX);
    const learned = this.deps.loadLearned ? await this.deps.loadLearned(guest).catch(() => undefined) : undefined;
    if (learned) {
      e.knownTasks = new Set(learned.tasks.filter((t) => typeof t === 'string').slice(0, MAX_TASK_NAMES));
      e.savedTasks = [...e.knownTasks].sort().join('\n');
      for (const [name, rate] of Object.entries(learned.taskRates).slice(0, MAX_TASK_NAMES)) {
        const est = new ArrivalRateEstimator({ halfLife: ARRIVAL_HALF_LIFE_S });
        try { est.restore(rate); e.taskRates.set(name, est); } catch { /* a bad rate: that gauge starts again */ }
      }
      if (opts.resumed) e.learned = learned;
    }
    if (e.closed) return;
    try {
      await this.configure(e, record?.settings ?? null, opts.resumed ? 'resumed after a daemon restart' : 'started');
    } catch (err) {
      // a guest must come up even if its persisted settings no longer make a controller: it is then only profiled
      this.deps.log.error({ guest, err: toHylicsError(err).toJSON() }, 'controller settings could not be applied; the guest is profiled only');
      await this.configure(e, null, 'settings refused');
    }
  }

  detach(guest: string): void {
    const e = this.entries.get(guest);
    if (!e) return;
    e.closed = true;
    if (e.timer !== undefined) this.deps.clock.clearTimer(e.timer);
    this.entries.delete(guest);
  }

  close(): void {
    for (const g of [...this.entries.keys()]) this.detach(g);
  }

  has(guest: string): boolean { return this.entries.has(guest); }

  /** Has the guest reported a task of this name (since this daemon started, or before a restart)? */
  knowsTask(guest: string, task: string): boolean {
    return this.deps.profiler.hasTask(guest, task) || (this.entries.get(guest)?.knownTasks.has(task) ?? false);
  }

  /** New settings or calibration for an attached guest (already validated and persisted by the caller). */
  async set(guest: string, record: ControlRecord, why = 'settings changed'): Promise<void> {
    const e = this.entries.get(guest);
    if (!e) return;
    e.calibration = record.calibration;
    await this.configure(e, record.settings ?? null, why);
  }

  /**
   * Resize a guest's share through the orchestrator (grow + share.resized; shrink through the guest's tier, never
   * below usage), for calibration; returns the size reached.
   */
  async applySize(guest: string, bytes: number): Promise<number> {
    const e = this.entries.get(guest);
    const r = await this.orch.apply(guest, bytes, e?.tierOps);
    if (e && r.tierOps !== undefined) e.tierOps = r.tierOps;
    return r.appliedBytes;
  }

  /** Hold the loop of a guest (calibration owns the share meanwhile) and let it go again. */
  pause(guest: string): void { const e = this.entries.get(guest); if (e) e.paused = true; }
  resume(guest: string): void { const e = this.entries.get(guest); if (e) e.paused = false; }

  private async configure(e: Entry, settings: ControlSettings | null, why: string): Promise<void> {
    e.settings = settings;
    e.ctl = null;
    e.model = null;
    if (settings && settings.scheme !== 'off') {
      const { model, calibrated } = modelFor(settings, e.calibration);
      const size = await this.deps.usage(e.guest).then((u) => u.sizeBytes).catch(() => settings.minBytes);
      const ciMin = settings.intervalMinMs / 1000;
      const ciMax = settings.intervalMaxMs / 1000;
      e.ctl = new ShareController({
        scheme: settings.scheme,
        reference: settings.sloMs / 1000,
        minBytes: settings.minBytes,
        maxBytes: settings.maxBytes,
        initialBytes: Math.min(Math.max(size, settings.minBytes), settings.maxBytes),
        ciMin,
        ciMax,
        ciInitial: ciMin,
        mThreshBytes: actuationThreshold(settings.maxBytes),
        serviceModel: model,
        improved: { ciMax: Math.max(ciMin, Math.min(IMPROVED_CI_MAX_S, ciMax)) },
        ...(this.deps.budgetBytes !== null ? { budgetBytes: this.deps.budgetBytes } : {}),
      });
      e.model = new ServiceModel(model);
      e.calibrated = calibrated;
      e.startedAt = this.deps.clock.now();
      e.startNote = `${why}; ${calibrated ? 'calibrated E[X|m]' : 'uncalibrated: starting from a provisional E[X|m] scaled to the SLO, corrected online (hylics control calibrate replaces it)'}`;
      const resumed = this.resumeLearned(e, learnedKey(settings, e.model.toJSON()));
      if (resumed) e.startNote += `; ${resumed}`;
      else if (!calibrated) this.deps.log.info({ guest: e.guest }, 'controller starts from its online estimate (no calibration for this task)');
      this.deps.metrics?.sloSeconds.set({ guest: e.guest }, settings.sloMs / 1000);
      this.schedule(e, resumed ? Math.round(e.ctl.interval * 1000) : settings.intervalMinMs);
    } else {
      this.deps.metrics?.sloSeconds.remove({ guest: e.guest });
      this.schedule(e, PROFILE_PERIOD_MS);
    }
  }

  /**
   * After a daemon restart: put back what the controller had learned, if it ran with the same settings and model
   * and not too long ago. Returns the note for the first decision, or '' (cold start, with the reason logged).
   */
  private resumeLearned(e: Entry, key: string): string {
    const l = e.learned;
    e.learned = undefined; // only the first configure after attach resumes; a later control set starts afresh
    if (!l?.controller || !e.ctl) return '';
    const now = this.deps.clock.now();
    const age = now - l.savedAt;
    const cold = (why: string): string => { e.startNote += `; learned state not resumed (${why}): starting cold`; return ''; };
    if (l.key !== key) return cold('the settings or the model changed');
    // (a wall clock stepped back by NTP makes a small negative age: the state is as good as ever)
    if (!(Math.abs(age) <= MAX_RESUME_AGE_MS)) return cold(`saved ${Math.round(age / 1000)} s ago`);
    try {
      e.ctl.restore(l.controller);
    } catch (err) {
      this.deps.log.warn({ guest: e.guest, err: toHylicsError(err).toJSON() }, 'learned controller state refused; starting cold');
      return cold(toHylicsError(err).message);
    }
    // the controller's clock goes on from where it stopped (its dwell times and λ weights are in controller seconds)
    e.startedAt = now - l.controller.time * 1000;
    e.lambda = e.ctl.lambda;
    return `resumed the learned state saved ${Math.round(Math.max(0, age) / 1000)} s before (λ ${e.ctl.lambda.toFixed(3)}/s, interval ${e.ctl.interval} s, ${l.controller.steps} steps)`;
  }

  private async persistLearned(e: Entry, force: boolean): Promise<void> {
    if (!this.deps.saveLearned) return;
    const tasks = [...e.knownTasks].sort().join('\n');
    if (!force && tasks === e.savedTasks) return;
    const s: LearnedState = {
      v: LEARNED_VERSION, savedAt: this.deps.clock.now(),
      key: e.ctl && e.settings && e.model ? learnedKey(e.settings, e.model.toJSON()) : null,
      controller: e.ctl ? e.ctl.snapshot() : null,
      taskRates: Object.fromEntries([...e.taskRates].map(([n, est]) => [n, est.snapshot()])),
      tasks: [...e.knownTasks],
    };
    await this.deps.saveLearned(e.guest, s)
      .then(() => { e.savedTasks = tasks; })
      .catch((err) => this.deps.log.warn({ guest: e.guest, err: String(err) }, 'could not persist the learned controller state'));
  }

  private schedule(e: Entry, ms: number): void {
    if (e.closed) return;
    if (e.timer !== undefined) this.deps.clock.clearTimer(e.timer);
    e.intervalMs = ms;
    e.nextAt = this.deps.clock.now() + ms;
    e.timer = this.deps.clock.setTimer(() => { void this.tick(e.guest); }, ms);
  }

  /** One interval of one guest (also called directly by tests). Never throws: failures are logged. */
  async tick(guest: string): Promise<void> {
    const e = this.entries.get(guest);
    if (!e || e.ticking) return;
    e.ticking = true;
    try {
      if (e.paused) return;
      await this.sample(e);
    } catch (err) {
      this.deps.log.warn({ guest, err: toHylicsError(err).toJSON() }, 'control interval failed; trying again next interval');
    } finally {
      e.ticking = false;
      if (!e.closed && this.entries.get(guest) === e) this.schedule(e, e.ctl ? e.intervalMs : PROFILE_PERIOD_MS);
    }
  }

  private async tierStats(e: Entry): Promise<TierCounts | null> {
    if (e.tierOps === false || !this.deps.isConnected(e.guest)) return null;
    try {
      const t = await this.deps.request(e.guest, 'tier.stats', {}, TIER_STATS_TIMEOUT_MS) as TierCounts;
      e.tierOps = true;
      return t;
    } catch (err) {
      if (isMissingOp(err)) e.tierOps = false;
      return null;
    }
  }

  private async sample(e: Entry): Promise<void> {
    const { clock, profiler, metrics } = this.deps;
    const now = clock.now();
    const dtS = Math.max(0, (now - e.lastTickAt) / 1000);
    e.lastTickAt = now;
    const task = e.settings?.task ?? null;
    const { all, perTask } = profiler.drain(e.guest, task);
    for (const [name, st] of perTask) {
      let est = e.taskRates.get(name);
      if (!est) e.taskRates.set(name, (est = new ArrivalRateEstimator({ halfLife: ARRIVAL_HALF_LIFE_S })));
      metrics?.arrivalRate.set({ guest: e.guest, task: name }, est.observe(st.arrivals, dtS));
    }
    for (const [name, est] of e.taskRates)
      if (!perTask.has(name)) metrics?.arrivalRate.set({ guest: e.guest, task: name }, est.observe(0, dtS));
    for (const name of perTask.keys()) if (e.knownTasks.size < MAX_TASK_NAMES) e.knownTasks.add(name);
    const usage = await this.deps.usage(e.guest);
    const tier = await this.tierStats(e);
    if (tier) {
      const prev = e.tier ?? { evictions: 0, promotions: 0, hits: 0, misses: 0 };
      // counts since the agent started: a smaller value means the agent restarted
      const delta = (k: keyof TierCounts): number => (tier[k] >= prev[k] ? tier[k] - prev[k] : tier[k]);
      e.evictions += delta('evictions');
      e.promotions += delta('promotions');
      metrics?.tierEvictions.inc({ guest: e.guest }, delta('evictions'));
      metrics?.tierPromotions.inc({ guest: e.guest }, delta('promotions'));
      e.tier = { ...tier };
    }
    metrics?.tierHits.inc({ guest: e.guest }, all.memory);
    metrics?.tierMisses.inc({ guest: e.guest }, all.disk);
    const cpu = await this.deps.cpuSeconds(e.guest).catch(() => null);
    if (cpu !== null) {
      if (e.cpu !== null && cpu >= e.cpu) metrics?.cpuSeconds.inc({ guest: e.guest }, cpu - e.cpu);
      e.cpu = cpu;
    }
    let lambda = e.lambda;
    let after = usage;
    if (e.ctl && e.settings) {
      const s = e.settings;
      const d = e.ctl.step({
        time: (now - e.startedAt) / 1000, interval: dtS,
        meanResponseTime: all.meanMs === null ? null : all.meanMs / 1000,
        p95ResponseTime: all.p95Ms === null ? null : all.p95Ms / 1000, completions: all.completions,
        arrivals: all.arrivals, shareUsedBytes: usage.usedBytes, shareSizeBytes: usage.sizeBytes,
        fullFallbacks: all.disk,
        memoryTierTasks: all.memory, memoryTierMeanS: all.memoryMeanMs === null ? null : all.memoryMeanMs / 1000,
        diskTierTasks: all.disk, diskTierMeanS: all.diskMeanMs === null ? null : all.diskMeanMs / 1000,
      });
      lambda = e.lambda = d.lambda;
      e.wish = d.sizeBytes;
      const { target, budgetNote } = this.budgeted(e, d.sizeBytes);
      const applied = await this.orch.apply(e.guest, target, e.tierOps);
      if (applied.tierOps !== undefined) e.tierOps = applied.tierOps;
      const predicted = e.model!.responseTime(applied.appliedBytes / MiB, lambda);
      let action = applied.action;
      if (budgetNote && (action === 'grow' || action === 'hold') && target < d.sizeBytes) action = 'clamped';
      const notes = [e.startNote, `${d.reason}${d.actuated ? '' : ` (${s.scheme})`}`, budgetNote, applied.note].filter(Boolean);
      e.startNote = '';
      e.intervalMs = Math.round(d.nextIntervalS * 1000);
      const entry: DecisionEntry = {
        t: now, lambda, responseMeanMs: all.meanMs, p95Ms: all.p95Ms, tasks: all.completions,
        sizeBytes: usage.sizeBytes, targetBytes: d.sizeBytes, appliedBytes: applied.appliedBytes,
        predictedMs: Number.isFinite(predicted) ? predicted * 1000 : null, intervalMs: e.intervalMs, action, reason: notes.join('; '),
      };
      push(e.decisions, entry, DECISION_LOG_MAX);
      metrics?.targetBytes.set({ guest: e.guest }, d.sizeBytes);
      metrics?.decisions.inc({ guest: e.guest, action });
      if (action !== 'hold') this.deps.log.info({ guest: e.guest, ...entry }, 'control decision');
      if (applied.appliedBytes !== usage.sizeBytes)
        after = await this.deps.usage(e.guest).catch(() => ({ ...usage, sizeBytes: applied.appliedBytes }));
    }
    push(e.profile, {
      t: now, lambda, responseMeanMs: all.meanMs, p95Ms: all.p95Ms, tasks: all.completions,
      sizeBytes: after.sizeBytes, usedBytes: after.usedBytes, freeBytes: Math.max(0, after.sizeBytes - after.usedBytes),
      hitRatio: all.hitRatio, evictions: e.evictions, promotions: e.promotions, cpuSeconds: e.cpu,
    }, PROFILE_MAX);
    // persisted last: the decision and its profile point are both visible before the (slower) file writes
    if (e.ctl && e.settings) {
      await this.deps.saveLog?.(e.guest, e.decisions).catch((err) => this.deps.log.warn({ guest: e.guest, err: String(err) }, 'could not persist the decision log'));
    }
    await this.persistLearned(e, e.ctl !== null && e.settings !== null);
  }

  /** The size this guest may have under the host budget (never below its min), and a note when the budget decided. */
  private budgeted(e: Entry, want: number): { target: number; budgetNote: string } {
    const budget = this.deps.budgetBytes;
    const s = e.settings!;
    if (budget === null) return { target: want, budgetNote: '' };
    const wishes: BudgetWish[] = [];
    for (const o of this.entries.values()) {
      if (!o.ctl || !o.settings) continue;
      wishes.push({
        guest: o.guest,
        wantBytes: o === e ? want : o.wish || o.settings.minBytes,
        minBytes: o.settings.minBytes,
        sloMs: o.settings.sloMs,
        lambda: o.lambda,
        model: o.model!.toJSON(),
      });
    }
    const g = shareBudget(wishes, budget).get(e.guest)!;
    // the others shrink only at their own intervals: never take more than the budget leaves now
    const othersNow = [...this.entries.values()]
      .filter((o) => o !== e && o.ctl)
      .reduce((sum, o) => sum + (o.profile.at(-1)?.sizeBytes ?? o.settings!.minBytes), 0);
    const room = Math.max(s.minBytes, budget - othersNow);
    const target = Math.max(s.minBytes, Math.min(want, g.grantBytes, room));
    if (target >= want) return { target: want, budgetNote: '' };
    return {
      target,
      budgetNote: `host budget ${budget} B: wishes exceed it; granted ${g.grantBytes} B by SLO-deficit weight ${g.weight.toFixed(2)}${room < g.grantBytes ? `, ${room} B free until the others shrink` : ''} (never below min ${s.minBytes} B)`,
    };
  }

  /** The guest's settings (persisted record) with the loop's live state when it runs. */
  view(guest: string, record: ControlRecord | undefined): ControlView {
    const e = this.entries.get(guest);
    const s = record?.settings;
    if (!s) throw new HylicsError('HYLICS_ERR_CONTROL_NOT_SET', `guest ${guest} has no controller settings: hylics control set ${guest} --slo 10s`, { guest });
    const { model, calibrated } = modelFor(s, record.calibration);
    return {
      guest,
      scheme: s.scheme,
      sloMs: s.sloMs,
      task: s.task,
      minBytes: s.minBytes,
      maxBytes: s.maxBytes,
      intervalMs: e?.ctl ? e.intervalMs : s.intervalMinMs,
      intervalMinMs: s.intervalMinMs,
      intervalMaxMs: s.intervalMaxMs,
      nextDecisionAt: e?.ctl ? e.nextAt : null,
      calibrated,
      model,
      modelSource: calibrated ? 'calibrated' : 'provisional',
      budgetBytes: this.deps.budgetBytes,
      lastDecision: e?.decisions.at(-1) ?? null,
    };
  }

  decisions(guest: string, limit: number): DecisionEntry[] {
    return (this.entries.get(guest)?.decisions ?? []).slice(-limit);
  }

  profile(guest: string, since: number): ProfilePoint[] {
    return (this.entries.get(guest)?.profile ?? []).filter((p) => p.t >= since);
  }

  /** Sum of the minimums of the controlled guests other than `guest` (for the settings check). */
  othersMinBytes(guest: string): number {
    let sum = 0;
    for (const e of this.entries.values()) if (e.guest !== guest && e.ctl && e.settings) sum += e.settings.minBytes;
    return sum;
  }
}
