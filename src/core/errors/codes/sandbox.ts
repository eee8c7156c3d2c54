import type { ErrorTable } from '../types.js';

/** Codes of the sandbox area (see docs/errors.md). */
export const SANDBOX = {
} as const satisfies ErrorTable;
