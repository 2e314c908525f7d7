// Jest runs as native ESM (node --experimental-vm-modules) because
// @kubernetes/client-node is ESM-only; @swc/jest strips types fast and the
// type checker (npm run typecheck) is run separately.
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'es6' },
  },
];
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  // Sources import './x.js' (NodeNext); map to the .ts file under test.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
  // A test's bound stops a hang; it is not a speed check (bench/ measures
  // speed). jest's 5 s default failed CI on a busy 2-core machine for work
  // that takes 2 s on a quiet one, so the default is wider; tests that wait
  // on real daemons still set their own.
  testTimeout: 30_000,
};
export default {
  projects: [
    { ...common, displayName: 'api', testMatch: ['<rootDir>/test/api/**/*.test.ts'] },
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'store',
      testMatch: ['<rootDir>/test/store/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'drivers',
      testMatch: ['<rootDir>/test/drivers/**/*.test.ts'],
    },
    {
      ...common,
      // The Kubernetes source over real HTTP against test/support/kube-api-server.ts.
      displayName: 'kube',
      testMatch: ['<rootDir>/test/kube/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'lab',
      testMatch: ['<rootDir>/test/lab/**/*.test.ts'],
    },
  ],
};
