// The layer rule of docs/design.md is enforced by eslint.config.js; this proves it bites and that the tree obeys it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';
import { PACKAGE_ROOT } from '../src/os/self.js';

const eslint = new ESLint({ cwd: PACKAGE_ROOT });

async function ruleIds(code: string, filePath: string): Promise<string[]> {
  const [res] = await eslint.lintText(code, { filePath: `${PACKAGE_ROOT}/${filePath}` });
  return res!.messages.map((m) => m.ruleId ?? m.message);
}

test('an upward import is a lint error', async () => {
  assert.deepEqual(await ruleIds("import { x } from '../host/daemon.js';\nexport const y = x;\n", 'src/core/bad.ts'), ['no-restricted-imports']);
  assert.deepEqual(await ruleIds("import { x } from '../cli/program.js';\nexport const y = x;\n", 'src/os/bad.ts'), ['no-restricted-imports']);
  assert.deepEqual(await ruleIds("import { x } from '../host/daemon.js';\nexport const y = x;\n", 'src/guest/bad.ts'), ['no-restricted-imports']);
  assert.deepEqual(await ruleIds("import { x } from '../guest/agent.js';\nexport const y = x;\n", 'src/host/bad.ts'), ['no-restricted-imports']);
  assert.deepEqual(await ruleIds("import { readFileSync } from 'node:fs';\nexport const y = readFileSync;\n", 'src/core/bad.ts'), ['no-restricted-imports']);
  assert.deepEqual(await ruleIds("import x from '../../native/build/Release/hylics.node';\nexport const y = x;\n", 'src/host/bad.ts'), ['no-restricted-imports']);
});

test('downward imports are fine', async () => {
  assert.deepEqual(await ruleIds("import { x } from '../core/errors/index.js';\nexport const y = x;\n", 'src/host/ok.ts'), []);
  assert.deepEqual(await ruleIds("import { x } from '../os/self.js';\nexport const y = x;\n", 'src/guest/ok.ts'), []);
});

test('the source tree obeys the layer rule', async () => {
  const results = await eslint.lintFiles(['src/**/*.ts']);
  const problems = results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => `${r.filePath}:${m.line} ${m.message}`));
  assert.deepEqual(problems, []);
});
