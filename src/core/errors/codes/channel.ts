import type { ErrorTable } from '../types.js';

/** Codes of the channel area (see docs/errors.md). */
export const CHANNEL = {
} as const satisfies ErrorTable;
