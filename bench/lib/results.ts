// Where every benchmark writes its JSON and SVG: bench/results in the checkout, also when `npm run bench` runs
// the compiled copy from dist/bench (a path relative to the bench file would land in dist/bench/results).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/os/self.js';

export const RESULTS_DIR = join(PACKAGE_ROOT, 'bench', 'results');

/** The path of a result file, with bench/results created. */
export function resultPath(file: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  return join(RESULTS_DIR, file);
}
