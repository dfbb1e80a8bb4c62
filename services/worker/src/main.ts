// The email worker process: see runProcess for start-up and graceful shutdown.
import { runProcess } from '@bank/shared/process/run-process';
import { startWorker } from './worker.ts';

await runProcess('worker', (config, logger) => startWorker(config, { logger }));
