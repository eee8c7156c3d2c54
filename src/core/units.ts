import { HylicsError, type ErrorCode } from './errors/index.js';

/** Binary units in bytes: the one definition (sizes are binary everywhere in Hylics). */
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)$/i;
const MULT: Record<string, number> = { '': 1, K: KiB, M: MiB, G: GiB, T: 1024 * GiB };

/** Parse "64M", "1.5G", "4096", "512MiB" into bytes (binary units). Throws HYLICS_ERR_INVALID_SIZE. */
export function parseSize(input: string | number, what = 'size'): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input <= 0) throw new HylicsError('HYLICS_ERR_INVALID_SIZE', `${what} must be a positive whole number of bytes, got ${input}`, { what, value: input });
    return input;
  }
  const m = SIZE_RE.exec(input.trim());
  if (!m) throw new HylicsError('HYLICS_ERR_INVALID_SIZE', `${what} "${input}" is not a size (examples: 4096, 64K, 64M, 1.5G)`, { what, value: input });
  const bytes = Math.round(Number(m[1]) * MULT[m[2]!.toUpperCase()]!);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new HylicsError('HYLICS_ERR_INVALID_SIZE', `${what} "${input}" must be greater than zero`, { what, value: input });
  return bytes;
}

/** Human-readable binary size: 67108864 -> "64.0 MiB". */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** The smallest CPU share a guest can be given (1% of a core). */
const MIN_CPUS = 0.01;

const NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;
/** Guest names become interface, cgroup and directory names, so they are kept short and plain. */
export function validateGuestName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_RE.test(name) || name.endsWith('-')) {
    throw new HylicsError('HYLICS_ERR_INVALID_NAME', `invalid guest name ${JSON.stringify(name)}: use 1-32 of a-z 0-9 -, starting with a letter, not ending with -`, { name });
  }
  return name;
}

/** CPUs as a fractional count (0.5 = half a core), bounded by what a host can give. */
export function parseCpus(input: string | number, max = 1024): number {
  return parseNumber('cpus', input, { min: MIN_CPUS, max });
}

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parse "500ms", "10s", "4m", "1h" (or a number of milliseconds) into milliseconds. Throws HYLICS_ERR_INVALID_ARGUMENT.
 * `allowZero`: 0 is accepted (a setting where 0 means off).
 */
export function parseDuration(input: string | number, what = 'duration', allowZero = false): number {
  const ms = typeof input === 'number' ? input : (() => {
    const m = DURATION_RE.exec(input.trim());
    if (!m) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${what} "${input}" is not a duration (examples: 500ms, 10s, 4m, 1h, or milliseconds)`, { what, value: input });
    return Number(m[1]) * DURATION_MS[(m[2] ?? 'ms').toLowerCase()]!;
  })();
  if (!Number.isFinite(ms) || ms < 0 || (ms === 0 && !allowZero)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${what} must be greater than zero, got ${String(input)}`, { what, value: String(input) });
  return ms;
}

export interface NumberRule {
  min?: number;
  max?: number;
  /** `min` itself is refused. */
  minExclusive?: boolean;
  integer?: boolean;
  /** The error code (default HYLICS_ERR_INVALID_ARGUMENT). */
  code?: ErrorCode;
}

/**
 * The one number check (CLI flags, controller and API parameters): a finite number, an integer if asked, within
 * [min, max]. Every failure names the parameter and the accepted range; details {param, value}.
 */
export function checkNumber(name: string, v: unknown, rule: NumberRule = {}): number {
  const { min, max } = rule;
  const low = min === undefined ? '' : rule.minExclusive ? `> ${min}` : `>= ${min}`;
  const range = [low, max === undefined ? '' : `<= ${max}`].filter((x) => x !== '').join(' and ');
  const bad = (why: string): never => {
    const must = range ? ` (must be ${rule.integer ? 'an integer ' : ''}${range})` : '';
    const value = typeof v === 'number' && Number.isFinite(v) ? v : String(v);
    throw new HylicsError(rule.code ?? 'HYLICS_ERR_INVALID_ARGUMENT', `${name} ${why}${must}, got ${String(v)}`, { param: name, value });
  };
  if (typeof v !== 'number' || !Number.isFinite(v)) return bad('is not a finite number');
  if (rule.integer && !Number.isInteger(v)) return bad('is not an integer');
  if (min !== undefined && (rule.minExclusive ? v <= min : v < min)) return bad('is too small');
  if (max !== undefined && v > max) return bad('is too large');
  return v;
}

const DECIMAL_RE = /^-?\d+(\.\d+)?$/;

/** A number given as text (a CLI flag): plain decimal only (not "", "0x10", "1e3"), then `checkNumber`. */
export function parseNumber(name: string, input: string | number, rule: NumberRule = {}): number {
  const v = typeof input === 'number' ? input : DECIMAL_RE.test(input.trim()) ? Number(input) : NaN;
  if (Number.isNaN(v) && typeof input === 'string') return checkNumber(name, input, rule);
  return checkNumber(name, v, rule);
}
