import { EventEmitter } from 'node:events';
import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { Pool } from 'undici';
import { CLOUDEVENTS_CONTENT_TYPE, encodeEvent } from '../../events/codec.js';
import { redactUrl } from '../../brokers/redact-url.js';
import { WebhookError, WebhookRejectedError } from '../../errors.js';
import { failSpan, traceOfSpan } from '../../tracing/spans.js';
import type { Tracing } from '../../tracing/tracing.js';
import type { EventHandler } from './handler.js';
import { WebhookSigner } from './webhook-signature.js';

export interface WebhookOptions {
  url: string;
  /**
   * A call that has not answered by then is cut off and counts as a failure.
   * @default 5000
   */
  timeoutMs?: number;
  /** Extra request headers (e.g. an authorization token for the receiver). */
  headers?: Record<string, string>;
  /**
   * Standard Webhooks secrets (`whsec_…`): each call is signed with every one (several during a
   * rotation). Absent: calls are not signed.
   */
  secrets?: readonly string[];
}

/** How much of a failing response body goes into the error (and the dead letter). */
const BODY_SNIPPET = 300;

/**
 * POSTs the structured CloudEvent JSON (`application/cloudevents+json`) to `url`, signed as
 * Standard Webhooks asks when `secrets` are given. A 2xx answer means done. A 4xx other than 408
 * and 429 means the receiver refuses this event for good (`WebhookRejectedError`: dead-lettered at
 * once). Anything else (5xx, 408, 429, a redirect, which is not followed, a network error, the
 * timeout) is worth another try; a 429 or 503 with `Retry-After` says how long to wait.
 *
 * Calls go through an undici connection pool of the consumer's own: per call it costs about a
 * tenth of `fetch` and two thirds of `node:http` (`npm run bench:consume` and bench/RESULTS.md),
 * and connections are kept alive across deliveries instead of opened per event.
 *
 * Every call carries the event's trace as W3C `traceparent` (and `tracestate`): while spans are
 * exported, that of a CLIENT span for the call, child of the delivery's "process" span; otherwise
 * the event's stored `traceparent` as it is, so the receiver's spans join the producer's trace
 * under the span that made the event (a span id of the gateway's own would name a span no backend
 * ever receives). An event without a trace context is sent without one.
 */
export function createWebhookHandler(options: WebhookOptions, tracing?: Tracing): EventHandler {
  const timeoutMs = options.timeoutMs ?? 5000;
  const url = new URL(options.url);
  // The URL may carry credentials; errors (and so dead letters and logs) show it without them.
  const shown = redactUrl(options.url, 'webhook URL');
  // undici's own timeouts tick in steps of up to a second; the call's timer below is exact.
  const pool = new Pool(url.origin, { headersTimeout: 0, bodyTimeout: 0 });
  const path = `${url.pathname}${url.search}`;
  const signer = options.secrets && options.secrets.length > 0 ? new WebhookSigner(options.secrets) : undefined;
  // HTTP client conventions; the URL without its credentials.
  const clientAttributes = {
    'http.request.method': 'POST',
    'url.full': shown,
    'server.address': url.hostname,
    'server.port': Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
  };

  return async (event, context) => {
    // undici takes an EventEmitter as the abort signal: far cheaper per call than an AbortController.
    const abort = new EventEmitter();
    let aborted = false;
    const timer = setTimeout(() => {
      aborted = true;
      abort.emit('abort');
    }, timeoutMs);
    const body = encodeEvent(event);
    const headers: Record<string, string> = {
      ...options.headers,
      ...signer?.headers(event.id, body),
      'content-type': CLOUDEVENTS_CONTENT_TYPE,
      'x-correlation-id': context.correlationId,
    };
    const tracer = context.trace && tracing?.tracer;
    let span: Span | undefined;
    if (tracer) {
      span = tracer.startSpan('POST', { kind: SpanKind.CLIENT, attributes: { ...clientAttributes, 'gateway.consumer': context.consumer } }, context.trace);
      const sent = traceOfSpan(span);
      headers['traceparent'] = sent.traceparent;
      if (sent.tracestate !== null) headers['tracestate'] = sent.tracestate;
    } else if (event.traceparent !== null) {
      headers['traceparent'] = event.traceparent;
      if (event.tracestate !== null) headers['tracestate'] = event.tracestate;
    }
    try {
      const response = await pool.request({ method: 'POST', path, headers, body, signal: abort });
      const { statusCode } = response;
      if (span) {
        span.setAttribute('http.response.status_code', statusCode);
        // HTTP conventions: for a client, 4xx and 5xx are errors.
        if (statusCode >= 400) span.setAttributes({ 'error.type': String(statusCode) }).setStatus({ code: SpanStatusCode.ERROR });
      }
      if (statusCode >= 200 && statusCode < 300) {
        await response.body.dump();
        return;
      }
      const snippet = await start(response.body);
      const message = `webhook ${shown} answered ${statusCode}${snippet ? `: ${snippet}` : ''}`;
      if (statusCode >= 400 && statusCode < 500 && statusCode !== 408 && statusCode !== 429) throw new WebhookRejectedError(message, statusCode);
      const retryAfterMs = statusCode === 429 || statusCode === 503 ? parseRetryAfter(response.headers['retry-after']) : undefined;
      throw new WebhookError(message, { status: statusCode, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
    } catch (error) {
      if (error instanceof WebhookError || error instanceof WebhookRejectedError) throw error;
      const failure = aborted
        ? new WebhookError(`webhook ${shown} did not answer within ${timeoutMs} ms`, { cause: error })
        : new WebhookError(`webhook ${shown} could not be reached: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
      if (span) {
        span.setAttribute('error.type', aborted ? 'timeout' : ((error as NodeJS.ErrnoException).code ?? (error as Error).name));
        failSpan(span, failure);
      }
      throw failure;
    } finally {
      clearTimeout(timer);
      span?.end();
    }
  };
}

/** `Retry-After` as delay-seconds or an HTTP date, in milliseconds from now; else undefined. */
export function parseRetryAfter(header: string | string[] | undefined, nowMs = Date.now()): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
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
