#!/usr/bin/env node
// Runs the test suite with Node's built-in runner on the compiled tests (dist/test/**/*.test.js).
// `npm test` runs scripts/setup.mjs first (pretest). Extra arguments filter by path substring:
//   npm test -- core/errors host/share
// Tests that need root, QEMU or namespaces skip with a reason where they cannot run; in CI (root) they run.
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testDir = join(root, 'dist', 'test');
if (!existsSync(testDir)) { console.error('no compiled tests: run npm run build'); process.exit(1); }

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.name.endsWith('.test.js') ? [p] : [];
  });
}
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const files = walk(testDir)
  .filter((f) => filters.length === 0 || filters.some((x) => relative(testDir, f).includes(x)))
  .sort();
if (files.length === 0) { console.error('no test files matched'); process.exit(1); }
// One microVM image build and one KVM probe for the whole run (and shared with `hylics demo`), not one per test.
const env = { ...process.env, HYLICS_CACHE_DIR: process.env.HYLICS_CACHE_DIR || '/var/cache/hylics' };
const r = spawnSync(process.execPath, ['--enable-source-maps', '--test', '--test-concurrency=1', '--test-timeout=600000', ...files], { stdio: 'inherit', cwd: root, env });
process.exit(r.status ?? 1);
