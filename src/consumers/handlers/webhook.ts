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
 * means done; any other status, a network error or the timeout is a failure.
 */
export function createWebhookHandler(options: WebhookOptions): EventHandler {
  const timeoutMs = options.timeoutMs ?? 5000;
  return async (event, context) => {
    let response: Response;
    try {
      response = await fetch(options.url, {
        method: 'POST',
        headers: {
          ...options.headers,
          'content-type': CLOUDEVENTS_CONTENT_TYPE,
          'x-correlation-id': context.correlationId,
        },
        body: new Uint8Array(encodeEvent(event)),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'manual',
      });
    } catch (error) {
      const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
      throw new WebhookError(
        timedOut
          ? `webhook ${options.url} did not answer within ${timeoutMs} ms`
          : `webhook ${options.url} could not be reached: ${(error as Error).cause ?? (error as Error).message}`,
        { cause: error },
      );
    }
    if (response.status >= 200 && response.status < 300) {
      await response.body?.cancel();
      return;
    }
    let body = '';
    try {
      body = (await response.text()).slice(0, BODY_SNIPPET);
    } catch {
      /* the status says enough */
    }
    throw new WebhookError(`webhook ${options.url} answered ${response.status}${body ? `: ${body}` : ''}`, {
      details: { status: response.status },
    });
  };
}
