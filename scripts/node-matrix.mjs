#!/usr/bin/env node
// Runs part of the test suite on other Node.js majors than the one installed (Node 20 is past its end of life;
// 22 and 24 are supported too). Each Node binary comes from the npm registry package node-linux-<arch> (the
// official binary inside the tarball, no install script, nothing fetched from other hosts), installed once into
// $HYLICS_CACHE_DIR/node/<version>. The native addon needs no rebuild: it uses Node-API (NAPI_VERSION 8), whose
// ABI is the same across these majors; test/os/native checks that it loads.
//   node scripts/node-matrix.mjs [--versions 22.23.5,24.22.3] [test path filters...]
// Default filters: the tests that need neither QEMU nor long end-to-end runs, plus a daemon + sandbox guest
// lifecycle (host/daemon.test) as the smoke test of the real thing (root; it skips otherwise).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { arch } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Pinned so a CI run is reproducible; bump with the Node.js release line. */
const DEFAULT_VERSIONS = ['22.23.5', '24.22.3'];
const DEFAULT_FILTERS = [
  'core/', 'cli/program', 'cli/bundle', 'cli/fast', 'cli/sim', 'lint', 'guest/agent.test', 'os/channel/', 'os/native', 'os/proc', 'os/exec',
  'host/config', 'host/service', 'host/state', 'host/http', 'host/profiler', 'host/channel/', 'host/control/',
  'host/daemon-fakes', 'host/daemon-commands', 'host/daemon.test',
];
const NODE_ARCH = { x64: 'x64', arm64: 'arm64' }[arch()];

const argv = process.argv.slice(2);
const vi = argv.indexOf('--versions');
const versions = vi >= 0 ? argv[vi + 1].split(',') : DEFAULT_VERSIONS;
const filters = argv.filter((a, i) => !a.startsWith('--') && !(vi >= 0 && i === vi + 1));
const cache = join(process.env.HYLICS_CACHE_DIR || '/var/cache/hylics', 'node');

function nodeBinary(version) {
  if (!NODE_ARCH) throw new Error(`no node-linux package for ${arch()}`);
  const dir = join(cache, version);
  const bin = join(dir, 'node_modules', `node-linux-${NODE_ARCH}`, 'bin', 'node');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    process.stderr.write(`[node-matrix] installing node-linux-${NODE_ARCH}@${version} from the npm registry into ${dir}\n`);
    const r = spawnSync('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', `node-linux-${NODE_ARCH}@${version}`], { stdio: 'inherit' });
    if (r.status !== 0 || !existsSync(bin)) throw new Error(`could not install node-linux-${NODE_ARCH}@${version}`);
  }
  return bin;
}

let failed = 0;
for (const v of versions) {
  const bin = nodeBinary(v);
  const got = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (got !== `v${v}`) throw new Error(`${bin} is ${got}, wanted v${v}`);
  process.stderr.write(`\n== tests on Node ${got} (${bin})\n`);
  const t0 = Date.now();
  // scripts/test.mjs runs the test runner with process.execPath: this binary, and so do the daemon and guest
  // agents the tests start (NODE_BIN is process.execPath)
  const r = spawnSync(bin, [join(root, 'scripts', 'test.mjs'), ...(filters.length > 0 ? filters : DEFAULT_FILTERS)], { stdio: 'inherit', cwd: root });
  process.stderr.write(`== Node ${got}: ${r.status === 0 ? 'passed' : `FAILED (exit ${r.status})`} in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  if (r.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
