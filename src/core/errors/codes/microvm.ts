import type { ErrorTable } from '../types.js';

/** Codes of the microvm area (see docs/errors.md). */
export const MICROVM = {
} as const satisfies ErrorTable;
