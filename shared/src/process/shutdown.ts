import type { Logger } from '../logging/logger.ts';

export type ShutdownStep = readonly [name: string, close: () => Promise<unknown> | unknown];

/**
 * A process's graceful close: the steps in order (stop taking work, finish what is in hand, then
 * release stores), each run once however often close() is called. A failing step is logged and
 * the rest still run, so one stuck client does not keep the pool open; close() then rejects with
 * the first failure.
 */
export function shutdownSequence(steps: readonly ShutdownStep[], logger: Logger, done = 'stopped'): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= (async () => {
      let failure: unknown;
      for (const [name, close] of steps) {
        try {
          await close();
        } catch (error) {
          logger.warn({ err: error, step: name }, 'shutdown step failed');
          failure ??= error;
        }
      }
      logger.info(done);
      if (failure !== undefined) throw failure;
    })();
    return closing;
  };
}
