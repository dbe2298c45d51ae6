import { buildApp } from './app.js';
import { loadConfig } from './config/config.js';
import { GatewayError } from './errors.js';

async function main(): Promise<void> {
  let app: ReturnType<typeof buildApp>;
  let stopTimeoutMs: number;
  try {
    const config = loadConfig();
    stopTimeoutMs = config.stopTimeoutMs;
    app = buildApp(config);
  } catch (error) {
    // A bad setting or config file: its message names the problem; a stack would only hide it.
    process.stderr.write(`event-gateway: ${error instanceof GatewayError ? error.message : String(error)}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'stopping');
    const force = setTimeout(() => {
      app.logger.error({ timeoutMs: stopTimeoutMs }, 'graceful stop took too long; exiting');
      process.exit(1);
    }, stopTimeoutMs);
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
  // An expected failure (a broker refusing the credentials, a store that cannot be opened) names
  // what to fix in its message; a stack only buries it.
  const text = error instanceof GatewayError ? `${error.name}: ${error.message}` : error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`event-gateway failed to start: ${text}\n`);
  process.exit(1);
});
