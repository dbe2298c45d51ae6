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

/** One server-sent event: its `event:` and `id:` lines, and its `data:` lines joined. */
export interface SseFrame {
  readonly event: string | null;
  readonly id: string | null;
  readonly data: string;
}

export interface SseStream {
  readonly status: number;
  /** Every frame with data, in the order it arrived. */
  readonly frames: SseFrame[];
  /** `ended` once the server ended the response, `failed` if reading it failed, else undefined. */
  ended(): 'ended' | 'failed' | undefined;
  /** Aborts the request and waits for the reader to stop. */
  close(): Promise<void>;
}

/**
 * A GraphQL-over-SSE request read with fetch (the distinct-connections mode Yoga serves): resolves
 * with the response status once its headers came, then collects frames as they arrive, calling
 * `onFrame` with each.
 */
export async function openSse(
  url: string,
  body: { query: string; variables?: Record<string, unknown> },
  headers: Record<string, string> = {},
  onFrame?: (frame: SseFrame) => void,
): Promise<SseStream> {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  const frames: SseFrame[] = [];
  let ended: 'ended' | 'failed' | undefined;
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of (response.body ?? []) as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const lines = buffer.slice(0, end).split('\n');
        buffer = buffer.slice(end + 2);
        const field = (name: string) =>
          lines
            .find((line) => line.startsWith(`${name}:`))
            ?.slice(name.length + 1)
            .trim() ?? null;
        const data = lines
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        if (!data) continue;
        const frame: SseFrame = { event: field('event'), id: field('id'), data };
        frames.push(frame);
        onFrame?.(frame);
      }
    }
    ended = 'ended';
  })().catch(() => {
    ended = controller.signal.aborted ? ended : 'failed';
  });
  return {
    status: response.status,
    frames,
    ended: () => ended,
    close: async () => {
      controller.abort();
      await reading;
    },
  };
}

/** Reads a GraphQL-over-SSE subscription with fetch, collecting `next` payloads. */
export function sseSubscribe<T>(httpUrl: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const received: T[] = [];
  const errors: unknown[] = [];
  const stream = openSse(httpUrl, { query, variables }, headers, (frame) => {
    const payload = JSON.parse(frame.data) as { data?: T; errors?: unknown[] };
    if (payload.errors) errors.push(...payload.errors);
    if (payload.data) received.push(payload.data);
  });
  return {
    received,
    errors,
    waitFor: (n: number, timeoutMs = 10_000) => waitFor(() => received.length >= n, timeoutMs, `${n} SSE results`).then(() => received),
    close: async () => {
      await (await stream).close();
    },
  };
}
