// Jest runs in native ESM mode (node --experimental-vm-modules, see package.json "test:jest"):
// @swc/jest strips the TypeScript of our own files and leaves `import` statements alone, so the
// ESM-only packages of the stack (slonik, paseto) load as real ES modules from node_modules,
// untransformed. Type checking is tsc's job (`npm run typecheck`), not the test runner's.
/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2024' },
        module: { type: 'es6' },
        sourceMaps: 'inline',
      },
    ],
  },
  testMatch: ['<rootDir>/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/.cache/', '/.data/'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  testTimeout: 60_000,
  maxWorkers: 2,
  reporters: [
    'default',
    ['<rootDir>/test/summary-reporter.cjs', {}],
    // A JUnit XML report for CI to upload (reports/ is git-ignored).
    ...(process.env.CI ? [['jest-junit', { outputDirectory: 'reports', outputName: 'junit.xml' }]] : []),
  ],
};
