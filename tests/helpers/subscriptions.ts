import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { waitFor } from './events.js';

export interface LiveSubscription<T> {
  readonly received: T[];
  readonly errors: unknown[];
  /** Waits until at least `n` results arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<T[]>;
  close(): void;
}

/** A real graphql-ws client against `httpUrl` (same path, ws: scheme). */
export function wsClient(httpUrl: string, options: { connectionParams?: Record<string, unknown> } = {}): Client {
  return createClient({
    url: httpUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: options.connectionParams,
    retryAttempts: 0,
    lazy: true,
  });
}

export function subscribe<T>(client: Client, query: string, variables: Record<string, unknown> = {}): LiveSubscription<T> {
  const received: T[] = [];
  const errors: unknown[] = [];
  const dispose = client.subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) errors.push(...result.errors);
        if (result.data) received.push(result.data as T);
      },
      error: (error) => errors.push(error),
      complete: () => undefined,
    },
  );
  return {
    received,
    errors,
    async waitFor(n, timeoutMs = 10_000) {
      await waitFor(() => received.length >= n || errors.length > 0, timeoutMs, `${n} subscription results`);
      if (errors.length > 0 && received.length < n) throw new Error(`subscription failed: ${JSON.stringify(errors)}`);
      return received;
    },
    close: dispose,
  };
}

/** Reads a GraphQL-over-SSE subscription with fetch, collecting `next` payloads. */
export function sseSubscribe<T>(httpUrl: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const received: T[] = [];
  const errors: unknown[] = [];
  const done = (async () => {
    const response = await fetch(httpUrl, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query, variables }),
      signal: controller.signal,
    });
    if (!response.body) throw new Error(`SSE request failed: ${response.status}`);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        if (!data) continue;
        const payload = JSON.parse(data) as { data?: T; errors?: unknown[] };
        if (payload.errors) errors.push(...payload.errors);
        if (payload.data) received.push(payload.data);
      }
    }
  })().catch((error: unknown) => {
    if ((error as Error).name !== 'AbortError') throw error;
  });
  return {
    received,
    errors,
    waitFor: (n: number, timeoutMs = 10_000) => waitFor(() => received.length >= n, timeoutMs, `${n} SSE results`).then(() => received),
    close: async () => {
      controller.abort();
      await done;
    },
  };
}
