// What a controller has learned, as plain JSON (ShareController.snapshot / restore): the daemon persists it so a
// controller resumed after a daemon restart does not start cold (docs/controller.md, "Persistence"). Restoring
// checks every field first and changes nothing on a malformed snapshot (HYLICS_ERR_CONTROL_INVALID_PARAM).
import { HylicsError } from '../errors/index.js';
import { checkNumber } from './validate.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function badSnapshot(what: string, v: unknown): never {
  throw new HylicsError('HYLICS_ERR_CONTROL_INVALID_PARAM', `controller snapshot: ${what} is malformed, got ${JSON.stringify(v)?.slice(0, 80)}`, { param: `snapshot.${what}` });
}

export function obj(what: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return badSnapshot(what, v);
  return v as Record<string, unknown>;
}

/** A finite number (JSON has no Infinity: -Infinity is stored as null where a field allows it). */
export function num(what: string, v: unknown, opts: { min?: number; max?: number; integer?: boolean } = {}): number {
  return checkNumber(`snapshot.${what}`, v, opts);
}

export function nums(what: string, v: unknown, len?: number, maxLen = 64): number[] {
  if (!Array.isArray(v) || (len !== undefined && v.length !== len) || v.length > maxLen) return badSnapshot(what, v);
  return v.map((x, i) => num(`${what}[${i}]`, x));
}

export function nullableNum(what: string, v: unknown, opts: { min?: number } = {}): number | null {
  return v === null ? null : num(what, v, opts);
}
