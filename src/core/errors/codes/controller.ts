import type { ErrorTable } from '../types.js';

/** Codes of the controller area (see docs/errors.md). */
export const CONTROLLER = {
} as const satisfies ErrorTable;
