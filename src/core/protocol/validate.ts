// One ajv instance for every channel schema (TypeBox schemas are plain JSON Schema). Compiled validators are
// cached per schema object, so registering an op compiles its schemas once.
import { Ajv, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { HylicsError } from '../errors/index.js';

const ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false });
const cache = new WeakMap<object, ValidateFunction>();

export function compile(schema: TSchema): ValidateFunction {
  let v = cache.get(schema);
  if (!v) {
    v = ajv.compile(schema);
    cache.set(schema, v);
  }
  return v;
}

/** Throws HYLICS_ERR_CHANNEL_BAD_MESSAGE naming the first failing field. */
export function check(schema: TSchema, value: unknown, what: string): void {
  const v = compile(schema);
  if (!v(value)) {
    const e = v.errors?.[0];
    const where = e ? `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}` : 'is invalid';
    throw new HylicsError('HYLICS_ERR_CHANNEL_BAD_MESSAGE', `${what}: ${where}`, { what, path: e?.instancePath ?? '', reason: e?.message ?? '' });
  }
}
