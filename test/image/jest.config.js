// The image test has its own config so that `npm test` never runs it: it
// needs the image `npm run image` built (.pairshift/image/oci), umoci, root
// and a lab pair. Run it with `npm run test:image`.
export default {
  rootDir: '../..',
  displayName: 'image',
  testMatch: ['<rootDir>/test/image/**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } },
    ],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
};
