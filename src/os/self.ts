// Where Hylics' own entry points live, so the daemon can start guest agents and module workers with the same
// code it runs itself: compiled (dist/**.js) in a deployment, TypeScript through tsx in a source checkout.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url)); // .../src/os or .../dist/src/os

/** The directory that holds core/ os/ guest/ host/ cli/ (src or dist/src). */
export const SRC_ROOT = resolve(here, '..');
/** The package root (where package.json is). */
export const PACKAGE_ROOT = existsSync(join(SRC_ROOT, '..', 'package.json')) ? resolve(SRC_ROOT, '..') : resolve(SRC_ROOT, '..', '..');

/**
 * argv (without the node binary) that runs the module at `relPath` (relative to SRC_ROOT, given without
 * extension, e.g. 'guest/agent-main'), compiled or through tsx.
 */
export function entryArgv(relPath: string): string[] {
  const js = join(SRC_ROOT, `${relPath}.js`);
  if (existsSync(js)) return ['--enable-source-maps', js];
  const ts = join(SRC_ROOT, `${relPath}.ts`);
  // tsx resolved here, not from the child's cwd (a guest may run elsewhere)
  if (existsSync(ts)) return ['--import', import.meta.resolve('tsx'), ts];
  throw new Error(`entry point ${relPath} not found under ${SRC_ROOT}`);
}

/** The node binary to use for child processes. */
export const NODE_BIN = process.execPath;
