// Layering (docs/design.md): core (pure) <- os <- guest / host <- cli. Dependencies point down only,
// and only os/ may load the native addon. This config is the enforcement; test/lint.test.ts proves it bites.
import tseslint from 'typescript-eslint';

const NODE_IO = ['fs', 'fs/promises', 'net', 'child_process', 'dgram', 'http', 'https', 'http2', 'tls', 'dns', 'cluster', 'worker_threads', 'os', 'process']
  .flatMap((m) => [m, `node:${m}`]);
const layer = (name) => ({ group: [`**/${name}/**`, `**/${name}/*`, `**/${name}`], message: `layer violation: this layer may not import ${name}/ (see docs/design.md)` });
const nativeAddon = { group: ['**/native/**', '**/*.node', 'bindings', 'node-gyp-build'], message: 'only src/os/ may load the native addon' };

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'bench/results/**'] },
  // typescript-eslint's recommended rules on every TypeScript file (they include the parser)
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    rules: {
      // `_name`: a parameter an interface requires and this implementation does not need
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // tests declare what their cleanup (t.after) reads before the statement that assigns it
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  // 120 columns for code and comments; a line is exempt for a URL or a string, template or regex literal in it
  // (a message or a pattern reads better whole than cut)
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    rules: {
      'max-len': ['error', {
        code: 120, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true,
      }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: NODE_IO.map((name) => ({ name, message: 'core/ is pure: no I/O modules' })),
        patterns: [layer('os'), layer('guest'), layer('host'), layer('cli'), nativeAddon],
      }],
    },
  },
  {
    files: ['src/os/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [layer('guest'), layer('host'), layer('cli')] }] },
  },
  {
    files: ['src/guest/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [layer('host'), layer('cli'), nativeAddon] }] },
  },
  {
    files: ['src/host/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [layer('guest'), layer('cli'), nativeAddon] }] },
  },
  {
    files: ['src/cli/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [nativeAddon] }] },
  },
);
