// One ajv instance for every channel schema (TypeBox schemas are plain JSON Schema). Compiled validators are
// cached per schema object, so registering an op compiles its schemas once.
import { Ajv, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { HylicsError } from '../errors/index.js';

// unicode: false: maxLength/minLength count UTF-16 code units (String#length), not code points. Counting code points
// is a JS loop over every character (ajv's ucs2length): ~0.1 ms per 64 KiB base64 queue of a socket-offload state,
// in every reply. Code units are never fewer than code points, so no string longer than before passes.
// ajv 8 still honours the option but warns about it on stderr at construction: in every process that loads the
// protocol (the guest CLI, whose stderr apps and task reports read). That one warning is ours to know, not to print.
const UNICODE_WARNING = 'DEPRECATED: option unicode.';
const logger = {
  log: (...a: unknown[]): void => console.log(...a),
  warn: (...a: unknown[]): void => {
    if (!(typeof a[0] === 'string' && a[0].startsWith(UNICODE_WARNING))) console.warn(...a);
  },
  error: (...a: unknown[]): void => console.error(...a),
};
const ajv = new Ajv({
  allErrors: false, strict: false, coerceTypes: false, useDefaults: false, unicode: false, logger,
});

/**
 * Format "base64": canonical padded base64 (what Buffer#toString('base64') writes; [A-Za-z0-9+/], '=' padding,
 * length a multiple of 4). Node's decoder skips characters outside the alphabet and stops at a '=', so a string with
 * any of them decodes to fewer bytes than its length implies; it also takes the URL-safe '-' and '_', looked for
 * separately; the last group must have zero padding bits. Native and without allocating (a scratch buffer): a
 * regex over a 64 KiB queue (87,384 characters) cost ~3x more.
 */
export function isBase64(s: string): boolean {
  const n = s.length;
  if (n % 4 !== 0) return false;
  if (n === 0) return true;
  if (s.indexOf('-') >= 0 || s.indexOf('_') >= 0) return false;
  const pad = s.charCodeAt(n - 1) !== 0x3d ? 0 : s.charCodeAt(n - 2) !== 0x3d ? 1 : 2;
  const want = (n / 4) * 3 - pad;
  if (scratch.length < want) scratch = Buffer.allocUnsafeSlow(Math.max(want, 2 * scratch.length));
  if (scratch.write(s, 0, 'base64') !== want) return false;
  if (pad === 0) return true;
  const last = s.slice(n - 4);
  return Buffer.from(last, 'base64').toString('base64') === last;
}
let scratch = Buffer.allocUnsafeSlow(64 * 1024);
ajv.addFormat('base64', { type: 'string', validate: isBase64 });
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
