import type { ErrorTable } from '../types.js';

/** Codes of the share area (see docs/errors.md). */
export const SHARE = {
} as const satisfies ErrorTable;
