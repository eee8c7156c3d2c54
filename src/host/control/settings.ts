// A guest's controller settings as the operator gives them (hylics control set / PUT .../control), checked
// whole before anything changes, and as they are persisted in the daemon state (GuestRecord.control) so the loop
// resumes after a daemon restart. Defaults with units are here and in docs/controller.md ("The running loop").
import { HylicsError } from '../../core/errors/index.js';
import { CONTROL_SCHEMES, type ControlBody, type ControlScheme } from '../../core/control-api.js';
import type { ServiceModelParams } from '../../core/control/index.js';
import { parseDuration, parseSize, MiB } from '../../core/units.js';

/** Algorithm 1's interval bounds (the paper's ci_min 30 s and ci_max 4 min). */
export const DEFAULT_INTERVAL_MIN_MS = 30_000;
export const DEFAULT_INTERVAL_MAX_MS = 240_000;
/** The shortest interval anyone may set (tests run the loop at 1 s). */
export const SHORTEST_INTERVAL_MS = 1000;
export const LONGEST_INTERVAL_MS = 3_600_000;
/** Share bounds when none are given: the paper's floor, and the guest's own memory as a ceiling. */
export const DEFAULT_MIN_BYTES = 32 * MiB;
/** The smallest share the loop manages (a tmpfs needs room for its metadata and one small file). */
export const SMALLEST_SHARE_BYTES = 1 * MiB;

export interface CalibrationRecord {
  model: ServiceModelParams;
  r2: number;
  at: string;
  points: Array<{ sizeBytes: number; meanS: number; sdS: number; runs: number }>;
}

/** A guest's controller settings. */
export interface ControlSettings {
  scheme: ControlScheme;
  sloMs: number;
  task: string | null;
  minBytes: number;
  maxBytes: number;
  intervalMinMs: number;
  intervalMaxMs: number;
}

/** What the daemon persists per guest (GuestRecord.control): the settings, and calibrated E[X|m] per task. */
export interface ControlRecord {
  settings?: ControlSettings;
  /** Calibrated E[X|m] per task name. */
  calibration?: Record<string, CalibrationRecord>;
}

export interface SettingsContext {
  /** The guest's memory (default ceiling). */
  guestMemoryBytes: number;
  hostMemoryBytes: number;
  /** Host share budget (bytes), null without one, and what the other controlled guests' minimums add up to. */
  budgetBytes: number | null;
  othersMinBytes: number;
  /** Is `task` a name the guest reported (or calibrated)? */
  knowsTask(task: string): boolean;
}

const bad = (param: string, msg: string, value: unknown): never => {
  throw new HylicsError('HYLICS_ERR_CONTROL_INVALID_PARAM', msg, { param, value: String(value) });
};

/** Check a whole settings body; throws a coded error and changes nothing on any bad field. */
export function parseControlBody(body: ControlBody, ctx: SettingsContext): ControlSettings {
  const scheme = (body.scheme ?? 'improved') as ControlScheme;
  if (!(CONTROL_SCHEMES as readonly string[]).includes(scheme)) bad('scheme', `scheme must be one of ${CONTROL_SCHEMES.join(', ')}, got ${String(body.scheme)}`, body.scheme);
  let sloMs: number;
  try { sloMs = parseDuration(body.slo, 'slo'); } catch (e) {
    return bad('slo', `slo must be a duration greater than zero (10s, 500ms, or milliseconds): ${(e as Error).message}`, body.slo);
  }
  if (sloMs > LONGEST_INTERVAL_MS * 24) bad('slo', `slo must be at most 1 day, got ${sloMs} ms`, body.slo);
  const task = body.task ?? null;
  if (task !== null && !ctx.knowsTask(task)) {
    throw new HylicsError('HYLICS_ERR_CONTROL_UNKNOWN_TASK', `the guest has not reported a task named ${JSON.stringify(task)} and it was not calibrated; run it once (track() / hylics task run) or calibrate it`, { task });
  }
  const minBytes = body.min === undefined ? Math.min(DEFAULT_MIN_BYTES, ctx.guestMemoryBytes) : parseSize(body.min, 'min');
  const maxBytes = body.max === undefined ? Math.max(minBytes, ctx.guestMemoryBytes) : parseSize(body.max, 'max');
  if (minBytes < SMALLEST_SHARE_BYTES) bad('min', `min must be at least ${SMALLEST_SHARE_BYTES} bytes, got ${minBytes}`, body.min);
  if (minBytes > maxBytes) bad('min', `min (${minBytes} bytes) must not exceed max (${maxBytes} bytes)`, body.min);
  if (maxBytes > ctx.hostMemoryBytes) {
    throw new HylicsError('HYLICS_ERR_INVALID_SIZE', `max ${maxBytes} bytes is more than this host's memory (${ctx.hostMemoryBytes} bytes)`, { what: 'max', value: maxBytes });
  }
  if (ctx.budgetBytes !== null) {
    if (minBytes + ctx.othersMinBytes > ctx.budgetBytes) {
      throw new HylicsError('HYLICS_ERR_CONTROL_BUDGET', `min ${minBytes} bytes plus the other guests' minimums (${ctx.othersMinBytes} bytes) exceed the host share budget (${ctx.budgetBytes} bytes)`, { budgetBytes: ctx.budgetBytes, minBytes, othersMinBytes: ctx.othersMinBytes });
    }
    if (maxBytes > ctx.budgetBytes) {
      if (body.max !== undefined) throw new HylicsError('HYLICS_ERR_CONTROL_BUDGET', `max ${maxBytes} bytes is over the host share budget (${ctx.budgetBytes} bytes)`, { budgetBytes: ctx.budgetBytes, maxBytes });
    }
  }
  const dur = (v: string | number | undefined, what: string, dflt: number): number => {
    if (v === undefined) return dflt;
    let ms: number;
    try { ms = parseDuration(v, what); } catch (e) { return bad(what, (e as Error).message, v); }
    if (ms < SHORTEST_INTERVAL_MS || ms > LONGEST_INTERVAL_MS) bad(what, `${what} must be between ${SHORTEST_INTERVAL_MS} ms and ${LONGEST_INTERVAL_MS} ms, got ${ms} ms`, v);
    return ms;
  };
  const intervalMinMs = dur(body.intervalMin, 'intervalMin', DEFAULT_INTERVAL_MIN_MS);
  const intervalMaxMs = dur(body.intervalMax, 'intervalMax', Math.max(intervalMinMs, DEFAULT_INTERVAL_MAX_MS));
  if (intervalMinMs > intervalMaxMs) bad('intervalMin', `intervalMin (${intervalMinMs} ms) must not exceed intervalMax (${intervalMaxMs} ms)`, body.intervalMin);
  return {
    scheme,
    sloMs,
    task,
    minBytes,
    maxBytes: ctx.budgetBytes !== null ? Math.min(maxBytes, ctx.budgetBytes) : maxBytes,
    intervalMinMs,
    intervalMaxMs,
  };
}

/**
 * E[X|m] when the task was not calibrated: a curve scaled to the SLO (E[X|0] = τ/2 falling to τ/4 with a knee
 * at c = 16 MiB), which Algorithm 1's online offset then corrects by up to ±50 % from what it measures. The loop
 * logs that it runs on this provisional model until `hylics control calibrate` replaces it.
 */
export function provisionalModel(sloMs: number): ServiceModelParams {
  const tau = sloMs / 1000;
  const c = 16;
  return { a: tau / 4, b: (tau / 4) * c, c };
}

/** The task's calibrated E[X|m] (with no task named: the only calibration there is), else the provisional one. */
export function modelFor(s: ControlSettings, calibration: ControlRecord['calibration']): { model: ServiceModelParams; calibrated: boolean } {
  const cals = Object.values(calibration ?? {});
  const cal = s.task !== null ? calibration?.[s.task] : cals.length === 1 ? cals[0] : undefined;
  return cal ? { model: cal.model, calibrated: true } : { model: provisionalModel(s.sloMs), calibrated: false };
}
