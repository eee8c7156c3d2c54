#!/usr/bin/env node
// Installs what Hylics needs on a fresh Debian 12 host and builds it: Debian packages (apt, only when missing),
// npm packages (npm ci when package-lock.json changed), the native addon (node-gyp, from source) and the
// TypeScript build (when a source file is newer than the build). Safe to run again: it does only what is stale.
// Used by `npm test` (pretest) and by the ./hylics wrapper. Plain Node.js, no dependencies, so it runs first.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { genVersion } from './gen-version.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let quiet = process.argv.includes('--quiet');
// progress lines are shown also with --quiet: a first run installs and builds for a minute or two
const say = (msg) => { process.stderr.write(`[setup] ${msg}\n`); };
// With --quiet (./hylics) a step's own output is kept back and shown only when the step fails.
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit', maxBuffer: 256 * 1024 * 1024, ...opts });
  if (r.status !== 0) {
    if (quiet) process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`);
    process.stderr.write(`[setup] failed: ${cmd} ${args.join(' ')} (exit ${r.status})\n`);
    process.exit(r.status ?? 1);
  }
  return r;
};
const stampDir = join(root, 'node_modules', '.hylics-setup');
/**
 * Written when a check found everything fresh (or made it so), dated to the check's start: the ./hylics wrapper
 * skips the check (and the Node start it costs) while no file it looks at is newer than this (one `find`).
 */
export const FRESH_STAMP = join(stampDir, 'fresh');

function debianPackages() {
  const text = readFileSync(join(root, 'scripts', 'debian-packages.txt'), 'utf8');
  return text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
}

// One dpkg-query for all packages (not one process each): the check runs before every ./hylics call.
function missingDebs(pkgs) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\\n', ...pkgs], { stdio: ['ignore', 'pipe', 'ignore'] });
  const installed = new Set((r.stdout ?? '').toString().split('\n').filter((l) => l.endsWith('install ok installed')).map((l) => l.split(' ')[0].split(':')[0]));
  return pkgs.filter((p) => !installed.has(p));
}

// The Debian check is skipped while neither the package list nor dpkg's database changed since it last passed.
const DPKG_STATUS = '/var/lib/dpkg/status';
function debStampValue() {
  const list = hashFile(join(root, 'scripts', 'debian-packages.txt'));
  return `${list} ${existsSync(DPKG_STATUS) ? statSync(DPKG_STATUS).mtimeMs : 0}`;
}

function hashFile(p) { return createHash('sha256').update(readFileSync(p)).digest('hex'); }

function newestMtime(dir) {
  let newest = 0;
  if (!existsSync(dir)) return 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Install and build what is stale. Imported by bin/hylics.js for ./hylics (one Node start instead of two). */
export function setup(opts = {}) {
  if (opts.quiet !== undefined) quiet = opts.quiet;
  const started = new Date();
  let fresh = true; // false while something stays stale (packages missing without root, native build failed)
  // ./hylics runs dist/src only: it need not walk test/ and bench/ before every call (about half the check's
  // file walk); `npm test` and `npm run setup` check those too (a change there is compiled with everything else)
  const sourceDirs = opts.cliOnly ? ['src'] : ['src', 'test', 'bench'];
  // 1. Debian packages
  const debStamp = join(stampDir, 'debian');
  if (!existsSync(debStamp) || readFileSync(debStamp, 'utf8') !== debStampValue()) {
    const missing = missingDebs(debianPackages());
    if (missing.length > 0) {
      if (process.getuid && process.getuid() !== 0) {
        process.stderr.write(`[setup] missing Debian packages (need root to install): ${missing.join(' ')}\n`);
        fresh = false;
      } else {
        say(`installing Debian packages: ${missing.join(' ')}`);
        run('apt-get', ['update', '-q']);
        run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      }
    }
    if (missingDebs(debianPackages()).length === 0) {
      mkdirSync(stampDir, { recursive: true });
      writeFileSync(debStamp, debStampValue());
    }
  }

  // 2. npm packages
  const nodeModules = join(root, 'node_modules');
  mkdirSync(nodeModules, { recursive: true });
  const lockHash = hashFile(join(root, 'package-lock.json'));
  const lockStamp = join(stampDir, 'lock');
  if (!existsSync(lockStamp) || readFileSync(lockStamp, 'utf8') !== lockHash) {
    // A node_modules that is a symlink (a git worktree sharing another checkout's install) is unlinked, not
    // emptied: `npm ci` would otherwise delete the other checkout's packages through the link.
    if (lstatSync(nodeModules).isSymbolicLink()) {
      say(`node_modules is a link to ${readlinkSync(nodeModules)} and package-lock.json differs from it: installing this checkout's own`);
      unlinkSync(nodeModules);
    }
    say('installing npm packages (npm ci)');
    run('npm', ['ci', '--no-audit', '--no-fund']);
    mkdirSync(stampDir, { recursive: true });
    writeFileSync(lockStamp, lockHash);
  }

  // 3. native addon (optional: Hylics says so once and falls back to a JS path when it cannot load)
  if (existsSync(join(root, 'native', 'binding.gyp'))) {
    const built = join(root, 'native', 'build', 'Release');
    const srcNewest = newestMtime(join(root, 'native', 'src')) || statSync(join(root, 'native', 'binding.gyp')).mtimeMs;
    const builtTime = existsSync(built) ? newestMtime(built) : 0;
    if (builtTime < srcNewest) {
      say('building the native addon (node-gyp)');
      const r = spawnSync('npm', ['run', 'build:native'], { cwd: root, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit', maxBuffer: 64 * 1024 * 1024 });
      if (r.status !== 0) {
        if (quiet) process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`);
        process.stderr.write('[setup] native addon build failed: Hylics will use its JS fallback\n');
        fresh = false;
      }
    }
  }

  // 4. TypeScript build (src/core/version.ts first: it is generated from package.json)
  genVersion();
  const distStamp = join(root, 'dist', '.build-stamp');
  const srcNewest = Math.max(...sourceDirs.map((d) => newestMtime(join(root, d))), statSync(join(root, 'tsconfig.json')).mtimeMs);
  if (!existsSync(distStamp) || statSync(distStamp).mtimeMs < srcNewest) {
    say('compiling TypeScript');
    run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
    run(process.execPath, [join(root, 'scripts', 'build-cli.mjs')]);
    writeFileSync(distStamp, new Date().toISOString());
  } else if (!existsSync(join(root, 'dist', 'src', 'cli', 'main.cjs'))) {
    // 5. the bundled CLI start (bin/hylics.js), for a build made before it existed
    run(process.execPath, [join(root, 'scripts', 'build-cli.mjs')]);
  }
  if (fresh) {
    mkdirSync(stampDir, { recursive: true });
    rmSync(FRESH_STAMP, { force: true }); // a new file: node_modules copied with `cp -al` shares the old one's inode
    writeFileSync(FRESH_STAMP, `${started.toISOString()}\n`);
    utimesSync(FRESH_STAMP, started, started); // an edit made while this check ran is newer: the next call checks
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) setup();
