import type { ErrorSpec } from './types.js';
import { ERRNO_CODES, type ErrnoRule } from './errno.js';
import { COMMON } from './codes/common.js';
import { CHANNEL } from './codes/channel.js';
import { SHARE } from './codes/share.js';
import { GUEST } from './codes/guest.js';
import { MODULE } from './codes/module.js';
import { CONTROLLER } from './codes/controller.js';
import { MICROVM } from './codes/microvm.js';
import { NATIVE } from './codes/native.js';
import { SANDBOX } from './codes/sandbox.js';
import { API } from './codes/api.js';
import { TIER } from './codes/tier.js';
import { OFFLOAD } from './codes/offload.js';

export type { ErrorSpec, ErrorTable } from './types.js';

/**
 * The one error registry. Each area keeps its codes in ./codes/<area>.ts so that work on different areas does
 * not collide; they all meet here. docs/errors.md is generated from this table (npm run gen:errors) and a test
 * keeps the two in step.
 */
export const ERRORS = {
  ...COMMON,
  ...CHANNEL,
  ...SHARE,
  ...GUEST,
  ...MODULE,
  ...CONTROLLER,
  ...MICROVM,
  ...NATIVE,
  ...SANDBOX,
  ...API,
  ...TIER,
  ...OFFLOAD,
} as const;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, code);
}

/** The base error of Hylics. `code` is stable; `details` is JSON-safe context for API callers. */
export class HylicsError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HylicsError';
    this.code = code;
    this.details = details;
  }

  get http(): number {
    return (ERRORS[this.code] as ErrorSpec).http;
  }

  /** The CLI's exit status for this error (the registry's `exit`, 1 when it names none). */
  get exitCode(): number {
    return (ERRORS[this.code] as ErrorSpec).exit ?? 1;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }

  /** Rebuild an error that crossed a process boundary (API reply, channel reply). Unknown codes become INTERNAL. */
  static fromJSON(value: unknown): HylicsError {
    const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    const code = isErrorCode(v.code) ? v.code : 'HYLICS_ERR_INTERNAL';
    const message = typeof v.message === 'string' ? v.message : 'unknown error';
    const details = typeof v.details === 'object' && v.details !== null ? (v.details as Record<string, unknown>) : undefined;
    return new HylicsError(code, message, details);
  }
}

export function isHylicsError(e: unknown): e is HylicsError {
  return e instanceof HylicsError;
}

/** Wrap anything thrown into a HylicsError (keeps HylicsErrors as they are). */
export function toHylicsError(e: unknown, code: ErrorCode = 'HYLICS_ERR_INTERNAL'): HylicsError {
  if (e instanceof HylicsError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new HylicsError(code, message, undefined, { cause: e });
}

/** Markdown for docs/errors.md, generated from the registry so the doc cannot drift. */
export function renderErrorsMarkdown(): string {
  const lines = [
    '# Error codes',
    '',
    'Every error Hylics reports (CLI, HTTP API, control channel) carries one of these stable codes.',
    'The CLI prints `error HYLICS_ERR_…: message` and exits with the status below (2 for usage errors, else 1);',
    'the HTTP API answers `{ "error": { "code", "message", "details" } }` with the HTTP status below.',
    '',
    'Generated from `src/core/errors` by `npm run gen:errors`; `test/core/errors.test.ts` fails if this file drifts.',
    '',
    '| code | HTTP | exit | meaning |',
    '| --- | --- | --- | --- |',
  ];
  for (const code of Object.keys(ERRORS).sort()) {
    const spec = (ERRORS as Record<string, ErrorSpec>)[code]!;
    lines.push(`| \`${code}\` | ${spec.http} | ${spec.exit ?? 1} | ${spec.doc.replace(/\|/g, '\\|')} |`);
  }
  lines.push('', '## System errors', '', 'A failed system call becomes a code by its errno name and the kind of call',
    '(`src/core/errors/errno.ts`, the only such mapping; `details.errno` keeps the name):', '',
    '| call | errno | code |', '| --- | --- | --- |');
  for (const rule of Object.values(ERRNO_CODES) as ErrnoRule[]) {
    for (const [errno, code] of Object.entries(rule.codes)) lines.push(`| ${rule.doc} | ${errno} | \`${code}\` |`);
    lines.push(`| ${rule.doc} | any other | \`${rule.otherwise}\` |`);
  }
  return lines.join('\n') + '\n';
}
