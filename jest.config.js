// Jest runs in native ESM mode (node --experimental-vm-modules, see package.json "test:jest"):
// @swc/jest strips the TypeScript of our own files and leaves `import` statements alone, so the
// ESM-only packages of the stack (slonik, paseto) load as real ES modules from node_modules,
// untransformed. Type checking is tsc's job (`npm run typecheck`), not the test runner's.
//
// Three tiers, told apart by the file name:
//   unit         *.test.ts              no PostgreSQL, Redis or child processes; seconds
//   integration  *.integration.test.ts  the real PostgreSQL and Redis, and the tools a tier needs (buf, kubectl >= 1.27)
//   e2e          *.e2e.test.ts          the real servers and processes, over real sockets
//   browser      *.browser.test.ts      the web app in the system's Chromium (playwright-core) over the real stack
const shared = {
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
  testPathIgnorePatterns: ['/node_modules/', '/.cache/', '/.data/'],
  setupFilesAfterEnv: ['<rootDir>/test/roarr-teardown.ts'],
};

/** @type {import('jest').Config} */
export default {
  projects: [
    {
      ...shared,
      displayName: 'unit',
      testMatch: ['<rootDir>/**/*.test.ts'],
      testPathIgnorePatterns: [...shared.testPathIgnorePatterns, '\\.integration\\.test\\.ts$', '\\.e2e\\.test\\.ts$', '\\.browser\\.test\\.ts$'],
    },
    {
      ...shared,
      displayName: 'integration',
      testMatch: ['<rootDir>/**/*.integration.test.ts'],
      // Fails fast, in one line, when PostgreSQL or Redis is missing.
      globalSetup: '<rootDir>/test/global-setup.ts',
    },
    {
      ...shared,
      displayName: 'e2e',
      testMatch: ['<rootDir>/**/*.e2e.test.ts'],
      globalSetup: '<rootDir>/test/global-setup.ts',
    },
    {
      ...shared,
      displayName: 'browser',
      testMatch: ['<rootDir>/**/*.browser.test.ts'],
      globalSetup: '<rootDir>/test/global-setup.ts',
    },
  ],
  testTimeout: 60_000,
  maxWorkers: 2,
  reporters: [
    'default',
    ['<rootDir>/test/summary-reporter.cjs', {}],
    // A JUnit XML report for CI to upload (reports/ is git-ignored).
    ...(process.env.CI ? [['jest-junit', { outputDirectory: 'reports', outputName: 'junit.xml' }]] : []),
  ],
};
