import type { ErrorTable } from '../types.js';

/** Codes of the native area (see docs/errors.md). */
export const NATIVE = {
} as const satisfies ErrorTable;
