// Tests run on Node 24's built-in TypeScript type stripping: no build step.
// STRATA_SLOW=1 turns on the long runs (full-size fuzzing, soaks).
export default {
  files: ['**/*.test.ts', '!node_modules/**', '!dist/**'],
  extensions: ['ts'],
  nodeArguments: ['--disable-warning=ExperimentalWarning'],
  timeout: '120s',
  concurrency: 2,
  workerThreads: false,
};
