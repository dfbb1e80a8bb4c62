import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '.cache/**', '.data/**', 'proto/gen/**', 'coverage/**', 'reports/**', 'web/dist/**', 'test-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'smart'],
      'no-console': 'off',
    },
  },
  {
    // The processes' own code (tests and benches may build a schema where they use it).
    files: ['shared/src/**/*.ts', 'services/*/src/**/*.ts', 'edge/src/**/*.ts', 'scripts/*/src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          // zod compiles a schema the first time it parses: a schema built inside a function is
          // built and compiled again on every call (about 25-85 us each, measured), on every query.
          selector: ':function CallExpression[callee.object.name="sql"][callee.property.name="type"] > CallExpression',
          message: 'Build a row schema once, at module level, and pass it to sql.type: zod compiles each new schema on its first parse.',
        },
      ],
    },
  },
  {
    // The web app runs in the browser.
    files: ['web/src/**/*.ts', 'web/src/**/*.tsx'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
