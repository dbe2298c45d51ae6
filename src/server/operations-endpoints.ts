import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { errorMessage } from '../errors.js';

/** What `/health` reports: the state of each part, for people and dashboards. */
export interface HealthReport {
  /** `ok`: every part works; `degraded`: the gateway runs but a part is down (see its entry). */
  readonly status: 'ok' | 'degraded';
  readonly store: { readonly dialect: string; readonly writable: boolean; readonly error: string | null };
  readonly broker: {
    readonly kind: string;
    readonly connected: boolean;
    readonly circuit: string;
    readonly lastError: string | null;
  };
}

export interface OperationsEndpointsOptions {
  /**
   * Resolves when the gateway can accept publishes: the store takes writes. A broker outage does
   * not count; the outbox absorbs it.
   */
  readonly storeWritable: () => Promise<void>;
  readonly broker: () => HealthReport['broker'];
  readonly dialect: string;
  /** Prometheus text exposition for `/metrics`; absent: no such endpoint. */
  readonly metrics?: () => Promise<{ contentType: string; body: string }>;
  /** A store check that takes longer than this counts as failed. @default 2000 */
  readonly checkTimeoutMs?: number;
}

/**
 * `GET /health`, `GET /ready` and `GET /metrics`, answered before Yoga sees the request: probes
 * and scrapes arrive every few seconds from every instance, and need no GraphQL machinery.
 *
 * - `/health` is liveness: 200 while the process serves requests, with a JSON body saying what is
 *   down (store, broker, circuit). A restart fixes neither a database nor a broker outage, so
 *   neither makes it fail.
 * - `/ready` is 200 while a publish would succeed (the store writes) and 503 otherwise. A broker
 *   that is down does not make the instance unready: mutations keep succeeding into the outbox
 *   and the relay drains it when the broker is back.
 */
export function createOperationsEndpoints(options: OperationsEndpointsOptions, next: RequestListener): RequestListener {
  const timeoutMs = options.checkTimeoutMs ?? 2000;

  const storeCheck = async (): Promise<string | null> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        options.storeWritable(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return null;
    } catch (error) {
      return errorMessage(error);
    } finally {
      clearTimeout(timer);
    }
  };

  const health = async (): Promise<HealthReport> => {
    const storeError = await storeCheck();
    const broker = options.broker();
    return {
      status: storeError === null && broker.connected && broker.circuit === 'CLOSED' ? 'ok' : 'degraded',
      store: { dialect: options.dialect, writable: storeError === null, error: storeError },
      broker,
    };
  };

  const routes: Record<string, (res: ServerResponse) => Promise<void>> = {
    '/health': async (res) => json(res, 200, await health()),
    '/ready': async (res) => {
      const error = await storeCheck();
      json(res, error === null ? 200 : 503, error === null ? { ready: true } : { ready: false, reason: `the store does not take writes: ${error}` });
    },
  };
  const { metrics } = options;
  if (metrics) {
    routes['/metrics'] = async (res) => {
      const { contentType, body } = await metrics();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
    };
  }

  return (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url === undefined ? undefined : req.url.split('?', 1)[0]!;
    const route = path === undefined ? undefined : routes[path];
    if (route === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
      next(req, res);
      return;
    }
    route(res).catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { error: errorMessage(error) });
      else res.destroy();
    });
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}
