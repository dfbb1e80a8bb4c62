// The HTTP API process: see runProcess for start-up and graceful shutdown.
import { runProcess } from '@bank/shared/process/run-process';
import { startApiServer } from './api-server.ts';

await runProcess('api', (config, logger) => startApiServer(config, { logger }));
