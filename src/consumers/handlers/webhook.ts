import { EventEmitter } from 'node:events';
import { Pool } from 'undici';
import { CLOUDEVENTS_CONTENT_TYPE, encodeEvent } from '../../events/codec.js';
import { WebhookError } from '../../errors.js';
import type { EventHandler } from './handler.js';

export interface WebhookOptions {
  url: string;
  /**
   * A call that has not answered by then is cut off and counts as a failure.
   * @default 5000
   */
  timeoutMs?: number;
  /** Extra request headers (e.g. an authorization token for the receiver). */
  headers?: Record<string, string>;
}

/** How much of a failing response body goes into the error (and the dead letter). */
const BODY_SNIPPET = 300;

/**
 * POSTs the structured CloudEvent JSON (`application/cloudevents+json`) to `url`. A 2xx answer
 * means done; any other status (redirects are not followed), a network error or the timeout is a
 * failure.
 *
 * Calls go through an undici connection pool of the consumer's own: per call it costs about a
 * tenth of `fetch` and two thirds of `node:http` (`npm run bench:consume` and bench/RESULTS.md),
 * and connections are kept alive across deliveries instead of opened per event.
 */
export function createWebhookHandler(options: WebhookOptions): EventHandler {
  const timeoutMs = options.timeoutMs ?? 5000;
  const url = new URL(options.url);
  // undici's own timeouts tick in steps of up to a second; the call's timer below is exact.
  const pool = new Pool(url.origin, { headersTimeout: 0, bodyTimeout: 0 });
  const path = `${url.pathname}${url.search}`;

  return async (event, context) => {
    // undici takes an EventEmitter as the abort signal: far cheaper per call than an AbortController.
    const abort = new EventEmitter();
    let aborted = false;
    const timer = setTimeout(() => {
      aborted = true;
      abort.emit('abort');
    }, timeoutMs);
    try {
      const { statusCode, body } = await pool.request({
        method: 'POST',
        path,
        headers: {
          ...options.headers,
          'content-type': CLOUDEVENTS_CONTENT_TYPE,
          'x-correlation-id': context.correlationId,
        },
        body: encodeEvent(event),
        signal: abort,
      });
      if (statusCode >= 200 && statusCode < 300) {
        await body.dump();
        return;
      }
      const snippet = await start(body);
      throw new WebhookError(`webhook ${options.url} answered ${statusCode}${snippet ? `: ${snippet}` : ''}`, { details: { status: statusCode } });
    } catch (error) {
      if (error instanceof WebhookError) throw error;
      throw aborted
        ? new WebhookError(`webhook ${options.url} did not answer within ${timeoutMs} ms`, { cause: error })
        : new WebhookError(`webhook ${options.url} could not be reached: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  };
}

/** The start of a failing answer's body, for the error; the rest is thrown away. */
async function start(body: AsyncIterable<Buffer>): Promise<string> {
  let text = '';
  try {
    for await (const chunk of body) {
      text += chunk.toString('utf8');
      if (text.length >= BODY_SNIPPET) break;
    }
  } catch {
    /* the status says enough */
  }
  return text.slice(0, BODY_SNIPPET);
}
