import { HylicsError } from '../errors/index.js';

/** Parameter checks shared by the controller parts: every failure names the parameter and its accepted range. */
export function checkNumber(name: string, v: unknown, opts: { min?: number; max?: number; minExclusive?: boolean; integer?: boolean } = {}): number {
  const range = `${opts.min === undefined ? '' : (opts.minExclusive ? `> ${opts.min}` : `>= ${opts.min}`)}${opts.min !== undefined && opts.max !== undefined ? ' and ' : ''}${opts.max === undefined ? '' : `<= ${opts.max}`}`;
  const bad = (why: string): never => {
    throw new HylicsError('HYLICS_ERR_CONTROL_INVALID_PARAM', `${name} ${why}${range ? ` (must be ${opts.integer ? 'an integer ' : ''}${range})` : ''}, got ${String(v)}`, { param: name, value: typeof v === 'number' && Number.isFinite(v) ? v : String(v) });
  };
  if (typeof v !== 'number' || !Number.isFinite(v)) return bad('is not a finite number');
  if (opts.integer && !Number.isInteger(v)) return bad('is not an integer');
  if (opts.min !== undefined && (opts.minExclusive ? v <= opts.min : v < opts.min)) return bad('is too small');
  if (opts.max !== undefined && v > opts.max) return bad('is too large');
  return v;
}

export const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);
