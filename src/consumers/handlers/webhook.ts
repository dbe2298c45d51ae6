import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
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

/** The answer to one call: its status, and the start of its body when it failed. */
interface Answer {
  readonly status: number;
  readonly body: string;
}

/**
 * POSTs the structured CloudEvent JSON (`application/cloudevents+json`) to `url`. A 2xx answer
 * means done; any other status (redirects are not followed), a network error or the timeout is a
 * failure.
 *
 * Calls go through `node:http` with a keep-alive agent of the consumer's own: per call that costs
 * a fraction of what `fetch` does (`npm run bench:consume` measures both), and connections are
 * reused across deliveries instead of opened per event.
 */
export function createWebhookHandler(options: WebhookOptions): EventHandler {
  const timeoutMs = options.timeoutMs ?? 5000;
  const url = new URL(options.url);
  const secure = url.protocol === 'https:';
  const agent = secure ? new HttpsAgent({ keepAlive: true, scheduling: 'lifo' }) : new HttpAgent({ keepAlive: true, scheduling: 'lifo' });
  const send = secure ? httpsRequest : httpRequest;
  const target = { host: url.hostname, port: url.port || (secure ? 443 : 80), path: `${url.pathname}${url.search}`, agent, method: 'POST' };

  const call = (body: Buffer, headers: Record<string, string | number>) =>
    new Promise<Answer>((resolve, reject) => {
      const req = send({ ...target, headers }, (res: IncomingMessage) => {
        const ok = res.statusCode! >= 200 && res.statusCode! < 300;
        let text = '';
        if (ok) res.resume();
        else res.setEncoding('utf8').on('data', (chunk: string) => void (text.length < BODY_SNIPPET && (text += chunk)));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode!, body: text.slice(0, BODY_SNIPPET) });
        });
        res.on('error', reject);
      });
      const timer = setTimeout(() => req.destroy(new WebhookError(`webhook ${options.url} did not answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(
          error instanceof WebhookError
            ? error
            : new WebhookError(`webhook ${options.url} could not be reached: ${(error as NodeJS.ErrnoException).code ?? error.message}`, { cause: error }),
        );
      });
      req.end(body);
    });

  return async (event, context) => {
    const body = encodeEvent(event);
    const answer = await call(body, {
      ...options.headers,
      'content-type': CLOUDEVENTS_CONTENT_TYPE,
      'content-length': body.byteLength,
      'x-correlation-id': context.correlationId,
    });
    if (answer.status >= 200 && answer.status < 300) return;
    throw new WebhookError(`webhook ${options.url} answered ${answer.status}${answer.body ? `: ${answer.body}` : ''}`, {
      details: { status: answer.status },
    });
  };
}
