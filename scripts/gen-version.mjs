#!/usr/bin/env node
// Writes src/core/version.ts from package.json's "version", the one place the version is set (npm version edits
// it). Run by `npm run build`, scripts/setup.mjs and `npm version`; it rewrites the file only when it differs, so
// it never makes the build look stale. A generated .ts file (not a JSON import) so tsc, the esbuild agent bundle
// and the microVM guest's read-only view of dist/ all get the value without reading package.json at run time.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export function versionSource(version) {
  return '// Generated from package.json by scripts/gen-version.mjs (npm run build); do not edit.\n'
    + `export const VERSION = ${JSON.stringify(version)};\n`;
}

export function genVersion() {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const file = join(root, 'src', 'core', 'version.ts');
  const text = versionSource(version);
  let old = '';
  try { old = readFileSync(file, 'utf8'); } catch { /* first run */ }
  if (old !== text) writeFileSync(file, text);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) genVersion();
