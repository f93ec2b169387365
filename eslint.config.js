// Lint rules with type information; zero warnings allowed (npm run lint).
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'generated/', 'crds/', 'node_modules/', '.cache/', 'coverage/'] },
  eslint.configs.recommended,
  tseslint.configs.strictTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': ['error', { allow: ['error'] }],
      // client-node declares API objects as classes, but they arrive as plain JSON objects: spreading them is fine.
      '@typescript-eslint/no-misused-spread': 'off',
      // Node.js runs our TypeScript by stripping types: only erasable syntax (no enums, no parameter properties).
      'no-restricted-syntax': [
        'error',
        { selector: 'TSEnumDeclaration', message: 'Node.js type stripping cannot run enums: use a const object.' },
        { selector: 'TSParameterProperty', message: 'Node.js type stripping cannot run parameter properties.' },
      ],
    },
  },
  {
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // Command-line entry points print their results.
    files: ['schemas/generate.ts', 'scripts/**/*.ts', 'bench/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
