import { ConfigError, parseProcessConfig, type Config } from '../config/config.ts';
import type { ProcessName } from '../config/production.ts';
import { loadSecretsIntoEnv, SecretsError } from '../config/secrets.ts';
import { createLogger, type Logger } from '../logging/logger.ts';
import { shutdownTracing } from '../observability/tracing-sdk.ts';

export type Running = { close(): Promise<void> };

/**
 * The life of every long-running process (API, gRPC, worker): secrets, then config (every invalid
 * variable, and in production every development default it would run on, in one line), then
 * `start`; on SIGTERM or SIGINT, `close` (stop accepting, finish
 * in-flight work, close pools) and exit 0, or exit 1 if that fails or outlasts
 * SHUTDOWN_TIMEOUT_MS. Start-up failures end the process with one line saying why.
 */
export async function runProcess(name: ProcessName, start: (config: Config, logger: Logger) => Promise<Running>): Promise<void> {
  let config: Config;
  try {
    await loadSecretsIntoEnv();
    config = parseProcessConfig(name);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof SecretsError) {
      console.error(`${name}: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger({ name, level: config.LOG_LEVEL, format: config.LOG_FORMAT });
  let running: Running;
  try {
    running = await start(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'start-up failed');
    console.error(`${name}: start-up failed: ${(error as Error).message.split('\n')[0]}`);
    process.exit(1);
  }

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutdown timed out; exiting');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    force.unref();
    // The spans of the last requests go out before the process does (a no-op without tracing).
    running.close().then(shutdownTracing).then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // `on`, not `once`: a second signal during shutdown must not fall back to the default action.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
