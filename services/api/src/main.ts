import { getConfig } from '@bank/shared/config/config';
import { loadSecretsIntoEnv } from '@bank/shared/config/secrets';
import { createLogger } from '@bank/shared/logging/logger';
import { startApiServer } from './api-server.ts';

await loadSecretsIntoEnv();
const config = getConfig();
const logger = createLogger({ name: 'api', level: config.LOG_LEVEL });
const server = await startApiServer(config, { logger });

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS + 1_000);
    force.unref();
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
