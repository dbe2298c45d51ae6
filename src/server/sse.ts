import type { FetchAPI } from 'graphql-yoga';
import { GatewayError } from '../errors.js';

/**
 * One result of a grouped subscription: its JSON text, and the SSE event id (the subscription
 * cursor) if any. It is also an execution result to Yoga's other processors (multipart), whose
 * serialiser calls `stringify`.
 */
export interface SseItem {
  readonly id: string | null;
  stringify(): string;
}

export function sseItem(data: string, id: string | null): SseItem {
  return { id, stringify: () => data };
}

/** What an item counts against `SUBSCRIBER_BUFFER_BYTES`: the length of its JSON text. */
export function sseItemSize(item: SseItem): number {
  return item.stringify().length;
}

/** Browsers and proxies drop an idle stream; a comment line every 12 s keeps it open. */
const PING_MS = 12_000;

/**
 * The SSE response of a grouped subscription ("distinct connections" mode of GraphQL over SSE,
 * as Yoga writes it): `event: next` with the result's JSON as `data:`, and its cursor as `id:`,
 * so that a browser's EventSource (or any client) reconnects with `Last-Event-ID` and resumes
 * after it; `event: complete` at the end. A stream that fails (too slow, token expired) ends with
 * one last `next` carrying the error, then `complete`.
 */
function isSseItem(item: unknown): item is SseItem {
  return typeof (item as SseItem).stringify === 'function' && 'id' in (item as object);
}

export function sseFrames(stream: AsyncIterator<SseItem | object>, fetchAPI: FetchAPI): Response {
  const encoder = new fetchAPI.TextEncoder();
  let ping: NodeJS.Timeout | undefined;
  const body = new fetchAPI.ReadableStream<Uint8Array>({
    start(controller) {
      // Some browsers wait for a first byte before they report the stream open.
      controller.enqueue(encoder.encode(':\n\n'));
      ping = setInterval(() => {
        if (controller.desiredSize === null) clearInterval(ping);
        else if (controller.desiredSize > 0) controller.enqueue(encoder.encode(':\n\n'));
      }, PING_MS);
    },
    async pull(controller) {
      try {
        const step = await stream.next();
        if (step.done) {
          clearInterval(ping);
          controller.enqueue(encoder.encode('event: complete\ndata:\n\n'));
          controller.close();
          return;
        }
        const item = step.value;
        if (!isSseItem(item)) {
          // Yoga's error masking turns what the stream threw into an ordinary result.
          controller.enqueue(encoder.encode(`event: next\ndata: ${JSON.stringify(item)}\n\n`));
          return;
        }
        const { id } = item;
        const data = item.stringify();
        controller.enqueue(encoder.encode(id ? `event: next\nid: ${id}\ndata: ${data}\n\n` : `event: next\ndata: ${data}\n\n`));
      } catch (error) {
        clearInterval(ping);
        const code = error instanceof GatewayError && error.expose ? error.code : 'INTERNAL_SERVER_ERROR';
        const message = error instanceof GatewayError && error.expose ? error.message : 'Unexpected error.';
        controller.enqueue(
          encoder.encode(`event: next\ndata: ${JSON.stringify({ errors: [{ message, extensions: { code } }] })}\n\nevent: complete\ndata:\n\n`),
        );
        controller.close();
      }
    },
    async cancel() {
      clearInterval(ping);
      await stream.return?.();
    },
  });
  return new fetchAPI.Response(body, {
    status: 200,
    headers: { 'Content-Type': 'text/event-stream', Connection: 'keep-alive', 'Cache-Control': 'no-cache', 'Content-Encoding': 'none' },
  });
}
