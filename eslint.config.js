// Lint: typescript-eslint's recommended rules, import cycles, and the boundaries of STYLE.md.
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // Dot-folders at the root (.scratch/, .device/, …) hold local, git-ignored tool state, not sources.
  { ignores: ['**/dist/**', '**/node_modules/**', 'libs/protocol/src/gen/**', 'coverage/**', '**/*.d.ts', '.*/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'warn',
      'import-x/no-cycle': ['error', { maxDepth: 10, ignoreExternal: true }],
      // The boundaries of STYLE.md, checked on the resolved file, so they hold however the import
      // is spelt (package name, relative path, deep path); no-restricted-imports below checks the
      // package names of what resolves outside the repo (@nestjs/*).
      'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: [
        { target: './apps/worker', from: ['./apps/coordinator', './apps/demo'], message: 'Apps never import each other.' },
        { target: './apps/worker', from: './libs/db', message: 'Only the coordinator uses libs/db.' },
        { target: './apps/coordinator', from: ['./apps/worker', './apps/demo'], message: 'Apps never import each other.' },
        { target: './apps/demo', from: ['./apps/coordinator', './apps/worker'], message: 'Apps never import each other.' },
        { target: './libs', from: './apps', message: 'Libraries never import apps.' },
      ] }],
      'no-console': 'error',
    },
    settings: {
      // import-x follows only files with these extensions, parsed by typescript-eslint's parser
      // (its flat "typescript" preset); without them a .ts file is an opaque leaf to no-cycle.
      'import-x/extensions': importX.flatConfigs.typescript.settings['import-x/extensions'],
      'import-x/parsers': importX.flatConfigs.typescript.settings['import-x/parsers'],
      // The TypeScript resolver maps `./b.js` to `b.ts` and `@gradpool/*` to its sources (the
      // "@gradpool/source" export condition); the node resolver found neither, so no-cycle saw
      // no edges at all and let every cycle through.
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          alwaysTryTypes: true,
          conditionNames: ['@gradpool/source', 'types', 'import', 'node', 'default'],
          project: 'tsconfig.json',
        }),
      ],
    },
  },
  {
    // An app or lib reaches another workspace only through its package name and public entry,
    // never by a relative path into its folder (`../../coordinator/src/x.js`). The suites in
    // test/ are exempt: they drive the coordinator's services directly (white-box).
    files: ['apps/**', 'libs/**'],
    rules: { 'import-x/no-relative-packages': 'error' },
  },
  {
    // Only entry points and the CLIs' own output may print.
    files: ['**/bin.ts', '**/main.ts', '**/cli/**', '**/demo/**', 'scripts/**', '**/bench/**', '**/*.test.ts', 'test/**', 'libs/*/scripts/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // The worker never imports NestJS or the database (STYLE.md), nor another app.
    files: ['apps/worker/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['@nestjs/*'], message: 'The worker never imports NestJS.' },
        { group: ['@gradpool/db', '@gradpool/db/*'], message: 'Only the coordinator uses libs/db.' },
        { group: ['@gradpool/coordinator', '@gradpool/coordinator/*', '**/apps/coordinator/**'], message: 'Apps never import each other.' },
      ] }],
    },
  },
  {
    files: ['apps/coordinator/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['@gradpool/worker', '@gradpool/worker/*', '**/apps/worker/**'], message: 'Apps never import each other.' },
      ] }],
    },
  },
  {
    // Libraries never import apps.
    files: ['libs/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['@gradpool/coordinator', '@gradpool/worker', '**/apps/**'], message: 'Libraries never import apps.' },
      ] }],
    },
  },
);
