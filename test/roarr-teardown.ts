// Slonik logs through roarr, and roarr's first load in a module registry adds an 'error' listener
// to process.stdout (roarr/src/factories/createNodeWriter.ts) that only its next load in the same
// global takes off. Jest gives every test file a global and a registry of its own but one real
// process.stdout per worker, so each file that loads Slonik left one listener behind, and the
// eleventh file in a worker printed MaxListenersExceededWarning (2-5 a CI run). Each file now
// takes its own off when it ends, with roarr's own teardown.
import { afterAll } from '@jest/globals';

afterAll(() => {
  (globalThis as { ROARR?: { teardown?: () => void } }).ROARR?.teardown?.();
});
