import { buildApp, type App, type BuildAppOptions } from '../../src/app.js';
import { loadConfig, type ConsumerConfig, type GatewayConfig } from '../../src/config/config.js';
import { removeDatabase, tempDatabasePath } from './store.js';

export interface TestAppOptions extends BuildAppOptions {
  consumers?: Partial<ConsumerConfig>[];
  env?: Record<string, string>;
  databasePath?: string;
}

/** A real gateway on port 0 with its own SQLite file. */
export async function startTestApp(options: TestAppOptions = {}): Promise<App & { config: GatewayConfig; dispose(): Promise<void> }> {
  const databasePath = options.databasePath ?? tempDatabasePath();
  const base = loadConfig({ PORT: '0', LOG_LEVEL: 'silent', DATABASE_PATH: databasePath, DATABASE_SYNCHRONOUS: 'NORMAL', ...options.env });
  const config: GatewayConfig = {
    ...base,
    consumers: (options.consumers ?? []).map((c) => ({
      maxAttempts: 5,
      backoff: { initialMs: 20, maxMs: 200, multiplier: 2, jitter: 0 },
      prefetch: 10,
      ...c,
    })) as ConsumerConfig[],
  };
  const app = buildApp(config, {
    ...options,
    relay: { backoff: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0 }, ...options.relay },
  });
  await app.start();
  let disposed = false;
  return Object.assign(app, {
    config,
    async dispose() {
      if (disposed) return;
      disposed = true;
      await app.stop();
      if (!options.databasePath) removeDatabase(databasePath);
    },
  });
}

/** POSTs a GraphQL operation and returns the parsed body. */
export async function gql<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[]; status: number }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] };
  return { ...body, status: response.status };
}
