import { HylicsError } from './errors/index.js';

/** Binary units in bytes: the one definition (sizes are binary everywhere in Hylics). */
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)$/i;
const MULT: Record<string, number> = { '': 1, K: KiB, M: MiB, G: GiB, T: 1024 * GiB };

/** Parse "64M", "1.5G", "4096", "512MiB" into bytes (binary units). Throws HYLICS_ERR_INVALID_SIZE. */
export function parseSize(input: string | number, what = 'size'): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input <= 0) throw new HylicsError('HYLICS_ERR_INVALID_SIZE', `${what} must be a positive whole number of bytes, got ${input}`, { what, value: input });
    return input;
  }
  const m = SIZE_RE.exec(input.trim());
  if (!m) throw new HylicsError('HYLICS_ERR_INVALID_SIZE', `${what} "${input}" is not a size (examples: 4096, 64K, 64M, 1.5G)`, { what, value: input });
  if (m[3] !== '' && m[3]!.toLowerCase() === 'b' && m[2] === '') {
    // "512B" is fine: plain bytes
  }
  const bytes = Math.round(Number(m[1]) * MULT[m[2]!.toUpperCase()]!);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new HylicsError('HYLICS_ERR_INVALID_SIZE', `${what} "${input}" must be greater than zero`, { what, value: input });
  return bytes;
}

/** Human-readable binary size: 67108864 -> "64.0 MiB". */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

const NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;
/** Guest names become interface, cgroup and directory names, so they are kept short and plain. */
export function validateGuestName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_RE.test(name) || name.endsWith('-')) {
    throw new HylicsError('HYLICS_ERR_INVALID_NAME', `invalid guest name ${JSON.stringify(name)}: use 1-32 of a-z 0-9 -, starting with a letter, not ending with -`, { name });
  }
  return name;
}

/** CPUs as a fractional count (0.5 = half a core), bounded by what a host can give. */
export function parseCpus(input: string | number, max = 1024): number {
  const v = typeof input === 'number' ? input : Number(input);
  if (typeof input === 'string' && !/^\d+(\.\d+)?$/.test(input.trim())) {
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `cpus "${input}" is not a number (examples: 1, 0.5, 2)`, { what: 'cpus', value: input });
  }
  if (!Number.isFinite(v) || v < 0.01 || v > max) {
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `cpus must be between 0.01 and ${max}, got ${input}`, { what: 'cpus', value: input });
  }
  return v;
}

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parse "500ms", "10s", "4m", "1h" (or a number of milliseconds) into milliseconds. Throws HYLICS_ERR_INVALID_ARGUMENT. */
export function parseDuration(input: string | number, what = 'duration'): number {
  const ms = typeof input === 'number' ? input : (() => {
    const m = DURATION_RE.exec(input.trim());
    if (!m) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${what} "${input}" is not a duration (examples: 500ms, 10s, 4m, 1h, or milliseconds)`, { what, value: input });
    return Number(m[1]) * DURATION_MS[(m[2] ?? 'ms').toLowerCase()]!;
  })();
  if (!Number.isFinite(ms) || ms <= 0) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${what} must be greater than zero, got ${String(input)}`, { what, value: String(input) });
  return ms;
}
