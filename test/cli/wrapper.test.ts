// The ./hylics wrapper at the repository root, run on a copy in a temporary tree whose bin/hylics.js is a stub that
// prints what it was started with: the setup check (HYLICS_RUN_SETUP=1) is skipped while the stamp
// node_modules/.hylics-setup/fresh is newer than every file the check looks at and runs otherwise; Node starts
// without NODE_EXTRA_CA_CERTS, the value passed on in HYLICS_NODE_EXTRA_CA_CERTS (bin/hylics.js puts it back).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { NODE_BIN, PACKAGE_ROOT } from '../../src/os/self.js';

const STUB = `process.stdout.write(JSON.stringify({ setup: process.env.HYLICS_RUN_SETUP, ca: process.env.NODE_EXTRA_CA_CERTS,
  kept: process.env.HYLICS_NODE_EXTRA_CA_CERTS, argv: process.argv.slice(2) }));\n`;

test('./hylics: the setup check only when something is newer than its stamp; NODE_EXTRA_CA_CERTS passed on', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'hylics-wrapper-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const file = (p: string, text = ''): void => { mkdirSync(dirname(join(root, p)), { recursive: true }); writeFileSync(join(root, p), text); };
  copyFileSync(join(PACKAGE_ROOT, 'hylics'), join(root, 'hylics'));
  file('bin/hylics.js', STUB);
  file('package.json', '{}\n');
  for (const p of ['dist/src/cli/main.cjs', 'dist/.build-stamp', 'native/build/Release/x.node', 'native/src/a.cc', 'native/binding.gyp',
    'src/cli/main.ts', 'package-lock.json', 'tsconfig.json', 'scripts/setup.mjs']) file(p);
  const stamp = join(root, 'node_modules', '.hylics-setup', 'fresh');
  const stampNow = (): void => { file('node_modules/.hylics-setup/fresh'); const s = new Date(Date.now() + 60_000); utimesSync(stamp, s, s); };
  const run = (env: NodeJS.ProcessEnv = {}): Record<string, unknown> => {
    const base = { ...process.env };
    delete base.NODE_EXTRA_CA_CERTS;
    const r = spawnSync('sh', [join(root, 'hylics'), 'guest', 'ls', 'a b'], { encoding: 'utf8', env: { ...base, ...env, PATH: `${dirname(NODE_BIN)}:${process.env.PATH ?? ''}` } });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  assert.equal(run().setup, '1', 'no stamp: the check runs');
  stampNow(); // (dated a minute ahead: /var/lib/dpkg/status, also looked at, may have changed just now)
  assert.deepEqual(run(), { argv: ['guest', 'ls', 'a b'] }, 'fresh: no check, argv as given');
  const later = new Date(Date.now() + 120_000);
  utimesSync(join(root, 'src', 'cli', 'main.ts'), later, later);
  assert.equal(run().setup, '1', 'a source newer than the stamp');
  utimesSync(join(root, 'src', 'cli', 'main.ts'), new Date(0), new Date(0));
  assert.equal(run().setup, undefined);
  file('src/core/new.ts');
  utimesSync(join(root, 'src', 'core', 'new.ts'), new Date(0), new Date(0));
  utimesSync(join(root, 'src', 'core'), later, later);
  assert.equal(run().setup, '1', 'a directory changed (a file added or removed)');
  utimesSync(join(root, 'src', 'core'), new Date(0), new Date(0));
  assert.equal(run().setup, undefined);
  rmSync(join(root, 'native', 'build'), { recursive: true });
  assert.equal(run().setup, '1', 'the native addon is not built');
  file('native/build/Release/x.node');
  rmSync(join(root, 'native', 'src'), { recursive: true });
  assert.equal(run().setup, '1', 'a path the check looks at is missing');
  file('native/src/a.cc');
  utimesSync(join(root, 'native', 'src', 'a.cc'), new Date(0), new Date(0));
  utimesSync(join(root, 'native', 'src'), new Date(0), new Date(0));
  assert.equal(run().setup, undefined);

  const ca = '/etc/ssl/certs/some bundle.crt';
  assert.deepEqual(run({ NODE_EXTRA_CA_CERTS: ca }), { ca: '', kept: ca, argv: ['guest', 'ls', 'a b'] });
  assert.deepEqual(run({ NODE_EXTRA_CA_CERTS: '' }), { ca: '', argv: ['guest', 'ls', 'a b'] });
});
