#!/usr/bin/env node
// Runs benchmarks from bench/ (never part of npm test): `npm run bench -- NAME [args]`, or `npm run bench` to
// list them. Each writes bench/results/NAME.json and NAME.svg. Uses the compiled build when present.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const names = readdirSync(join(root, 'bench')).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).sort();
const [name, ...args] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  console.error(`usage: npm run bench -- NAME [args]\nbenchmarks: ${names.join(', ')}`);
  process.exit(name ? 2 : 0);
}
spawnSync(process.execPath, ['scripts/setup.mjs', '--quiet'], { cwd: root, stdio: 'inherit' });
const compiled = join(root, 'dist', 'bench', `${name}.js`);
const argv = existsSync(compiled) ? ['--enable-source-maps', compiled, ...args] : ['--import', 'tsx', join(root, 'bench', `${name}.ts`), ...args];
const r = spawnSync(process.execPath, argv, { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
