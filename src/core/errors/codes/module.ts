import type { ErrorTable } from '../types.js';

/** Codes of the module area (see docs/errors.md). */
export const MODULE = {
} as const satisfies ErrorTable;
