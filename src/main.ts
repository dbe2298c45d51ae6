import { buildApp } from './app.js';
import { loadConfig } from './config/config.js';
import { GatewayError } from './errors.js';

/**
 * How long a graceful stop may take before the process exits anyway.
 * In-flight relay batches and handler calls get this long to finish.
 */
const STOP_TIMEOUT_MS = Number(process.env['STOP_TIMEOUT_MS'] ?? 25_000);

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    process.stderr.write(`event-gateway: ${error instanceof GatewayError ? error.message : String(error)}\n`);
    process.exit(1);
  }
  const app = buildApp(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'stopping');
    const force = setTimeout(() => {
      app.logger.error({ timeoutMs: STOP_TIMEOUT_MS }, 'graceful stop took too long; exiting');
      process.exit(1);
    }, STOP_TIMEOUT_MS);
    force.unref();
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        app.logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await app.start();
}

main().catch((error: unknown) => {
  process.stderr.write(`event-gateway failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
