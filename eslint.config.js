// Lint: typescript-eslint's recommended rules, import cycles, and the boundaries of STYLE.md.
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'libs/protocol/src/gen/**', 'coverage/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'warn',
      'import-x/no-cycle': ['error', { maxDepth: 10, ignoreExternal: true }],
      'no-console': 'error',
    },
    settings: { 'import-x/resolver': { node: true } },
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
