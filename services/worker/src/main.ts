import { parseConfig } from '@bank/shared/config/config';
import { loadSecretsIntoEnv } from '@bank/shared/config/secrets';
import { createLogger } from '@bank/shared/logging/logger';
import { startWorker } from './worker.ts';

await loadSecretsIntoEnv();
const config = parseConfig();
const logger = createLogger({ name: 'worker', level: config.LOG_LEVEL });

const worker = await startWorker(config, { logger });

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutdown requested');
  worker.close().then(
    () => process.exit(0),
    (error: unknown) => {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
