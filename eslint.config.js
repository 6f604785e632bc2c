// Lint rules: typescript-eslint's recommended type-aware set, plus the few
// project rules from docs/architecture.md (no console in library code).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.ci/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['bin/**/*.mjs', '*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // The web UI: plain browser modules (JSDoc types checked by `tsc -p ui/tsconfig.json`).
    files: ['ui/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries([
        'window', 'document', 'location', 'history', 'localStorage', 'sessionStorage', 'fetch', 'EventSource', 'URL', 'URLSearchParams',
        'AbortController', 'DOMException', 'TextDecoderStream', 'setTimeout', 'clearTimeout', 'Node', 'HTMLElement', 'Event',
      ].map((name) => [name, 'readonly'])),
    },
  },
  {
    files: ['cli/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'bin/**'],
    rules: { 'no-console': 'off' },
  },
);
