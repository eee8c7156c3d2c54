#!/usr/bin/env node
// Builds the addon from source with node-gyp (`npm run build:native`). Nothing is downloaded: node-gyp is pointed
// at the headers that ship with this Node.js (<prefix>/include/node) instead of fetching a tarball.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const nodedir = dirname(dirname(process.execPath));
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
  process.stderr.write(`[native] no Node.js headers under ${nodedir}/include/node: cannot build the addon offline\n`);
  process.exit(1);
}
// npm run sets npm_config_node_gyp to its bundled node-gyp; otherwise use one on PATH
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
const r = spawnSync(cmd, [...args, 'rebuild', '--directory', here, `--nodedir=${nodedir}`], { stdio: 'inherit' });
process.exit(r.status ?? 1);
