import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWebhookHandler } from '../../src/consumers/handlers/webhook.js';
import { WebhookError } from '../../src/errors.js';
import { makeEvent } from '../helpers/events.js';

interface Received {
  headers: IncomingMessage['headers'];
  body: unknown;
}

describe('webhook handler', () => {
  let server: Server;
  let url: string;
  let received: Received[];
  let respond: (req: IncomingMessage) => { status: number; body?: string } | 'hang';

  beforeEach(async () => {
    received = [];
    respond = () => ({ status: 204 });
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk) => (raw += chunk));
      req.on('end', () => {
        received.push({ headers: req.headers, body: JSON.parse(raw) });
        const answer = respond(req);
        if (answer === 'hang') return; // never answer
        res.writeHead(answer.status).end(answer.body ?? '');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const context = { consumer: 'billing', attempt: 1, correlationId: 'corr-9' };

  it('POSTs the structured CloudEvent with its content type and headers', async () => {
    const handler = createWebhookHandler({ url, headers: { authorization: 'Bearer t' } });
    const event = makeEvent({ key: 'k', subject: 'order/1', data: { total: 3 } });
    await handler(event, context);
    expect(received).toHaveLength(1);
    expect(received[0]!.headers['content-type']).toBe('application/cloudevents+json');
    expect(received[0]!.headers['authorization']).toBe('Bearer t');
    expect(received[0]!.headers['x-correlation-id']).toBe('corr-9');
    expect(received[0]!.body).toEqual({
      specversion: '1.0',
      id: event.id,
      source: event.source,
      type: event.type,
      subject: 'order/1',
      time: event.time.toISOString(),
      datacontenttype: 'application/json',
      data: { total: 3 },
      topic: event.topic,
      partitionkey: 'k',
      correlationid: event.correlationId,
    });
  });

  it('fails on a non-2xx answer, quoting status and body', async () => {
    respond = () => ({ status: 500, body: 'database unavailable' });
    const handler = createWebhookHandler({ url });
    const error = await Promise.resolve(handler(makeEvent(), context)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookError);
    expect((error as WebhookError).message).toBe(`webhook ${url} answered 500: database unavailable`);
    expect((error as WebhookError).retryable).toBe(true);
  });

  it('cuts off a webhook that hangs at its timeout and counts it as a failure', async () => {
    respond = () => 'hang';
    const handler = createWebhookHandler({ url, timeoutMs: 150 });
    const started = Date.now();
    await expect(handler(makeEvent(), context)).rejects.toThrow(/did not answer within 150 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('fails when nothing listens', async () => {
    const handler = createWebhookHandler({ url: 'http://127.0.0.1:9/nothing', timeoutMs: 1000 });
    await expect(handler(makeEvent(), context)).rejects.toThrow(/could not be reached/);
  });
});
