import { checkNumber as check, type NumberRule } from '../units.js';

/** Parameter checks of the controller parts: the one number check with the controller's error code. */
export function checkNumber(name: string, v: unknown, opts: Omit<NumberRule, 'code'> = {}): number {
  return check(name, v, { ...opts, code: 'HYLICS_ERR_CONTROL_INVALID_PARAM' });
}

export const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);
