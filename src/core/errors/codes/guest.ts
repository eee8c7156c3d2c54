import type { ErrorTable } from '../types.js';

/** Codes of the guest area (see docs/errors.md). */
export const GUEST = {
} as const satisfies ErrorTable;
