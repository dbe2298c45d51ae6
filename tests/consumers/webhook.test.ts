import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWebhookHandler } from '../../src/consumers/handlers/webhook.js';
import { Webhook } from 'standardwebhooks';
import { PermanentHandlerError, WebhookError, WebhookRejectedError } from '../../src/errors.js';
import { makeEvent } from '../helpers/events.js';

interface Received {
  headers: IncomingMessage['headers'];
  body: unknown;
  raw: string;
}

describe('webhook handler', () => {
  let server: Server;
  let url: string;
  let received: Received[];
  let respond: (req: IncomingMessage) => { status: number; body?: string; headers?: Record<string, string> } | 'hang';

  beforeEach(async () => {
    received = [];
    respond = () => ({ status: 204 });
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk) => (raw += chunk));
      req.on('end', () => {
        received.push({ headers: req.headers, body: JSON.parse(raw), raw });
        const answer = respond(req);
        if (answer === 'hang') return; // never answer
        res.writeHead(answer.status, answer.headers).end(answer.body ?? '');
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

  describe('Standard Webhooks signatures', () => {
    // Secrets as Standard Webhooks makes them: whsec_ + 24 random bytes in base64.
    const secret = `whsec_${Buffer.from('0123456789abcdefghijklmn').toString('base64')}`;
    const next = `whsec_${Buffer.from('another secret, rotated').toString('base64')}`;
    const verify = (key: string, r: Received) =>
      new Webhook(key).verify(r.raw, {
        'webhook-id': String(r.headers['webhook-id']),
        'webhook-timestamp': String(r.headers['webhook-timestamp']),
        'webhook-signature': String(r.headers['webhook-signature']),
      });

    it('signs each call so the standardwebhooks library verifies it, with the event id as webhook-id', async () => {
      const handler = createWebhookHandler({ url, secrets: [secret] });
      const event = makeEvent({ data: { total: 3, note: 'ünïcode' } });
      await handler(event, context);
      const [call] = received;
      expect(call!.headers['webhook-id']).toBe(event.id);
      expect(Math.abs(Number(call!.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(5);
      expect(verify(secret, call!)).toMatchObject({ id: event.id, data: { total: 3, note: 'ünïcode' } });
    });

    it('keeps webhook-id across attempts of one event, and a forged body fails verification', async () => {
      const handler = createWebhookHandler({ url, secrets: [secret] });
      const event = makeEvent();
      await handler(event, context);
      await handler(event, { ...context, attempt: 2 });
      expect(received.map((r) => r.headers['webhook-id'])).toEqual([event.id, event.id]);
      const forged = { ...received[0]!, raw: received[0]!.raw.replace(event.id, 'forged') };
      expect(() => verify(secret, forged)).toThrow();
      expect(() => verify(`whsec_${Buffer.from('not the secret').toString('base64')}`, received[0]!)).toThrow();
    });

    it('signs with every secret during a rotation, so either verifies', async () => {
      const handler = createWebhookHandler({ url, secrets: [next, secret] });
      await handler(makeEvent(), context);
      expect(String(received[0]!.headers['webhook-signature']).split(' ')).toHaveLength(2);
      expect(verify(secret, received[0]!)).toBeDefined();
      expect(verify(next, received[0]!)).toBeDefined();
    });

    it('sends no signature headers without a secret', async () => {
      await createWebhookHandler({ url })(makeEvent(), context);
      expect(received[0]!.headers['webhook-signature']).toBeUndefined();
    });
  });

  describe('how an answer is classified', () => {
    const failure = async (answer: { status: number; headers?: Record<string, string> }) => {
      respond = () => answer;
      return Promise.resolve(createWebhookHandler({ url })(makeEvent(), context)).catch((e: unknown) => e);
    };

    for (const status of [400, 401, 403, 404, 410, 422]) {
      it(`a ${status} is permanent: dead-lettered at once, status in the error`, async () => {
        const error = await failure({ status });
        expect(error).toBeInstanceOf(WebhookRejectedError);
        expect(error).toBeInstanceOf(PermanentHandlerError);
        expect((error as WebhookRejectedError).status).toBe(status);
        expect((error as Error).message).toContain(`answered ${status}`);
      });
    }

    for (const status of [408, 429, 500, 502, 503]) {
      it(`a ${status} is worth another try`, async () => {
        const error = await failure({ status });
        expect(error).toBeInstanceOf(WebhookError);
        expect(error).not.toBeInstanceOf(PermanentHandlerError);
        expect((error as WebhookError).status).toBe(status);
      });
    }

    it('reads Retry-After of a 429 in seconds and of a 503 as a date', async () => {
      expect(((await failure({ status: 429, headers: { 'retry-after': '7' } })) as WebhookError).retryAfterMs).toBe(7000);
      const at = new Date(Date.now() + 30_000).toUTCString();
      const fromDate = ((await failure({ status: 503, headers: { 'retry-after': at } })) as WebhookError).retryAfterMs!;
      expect(fromDate).toBeGreaterThan(28_000);
      expect(fromDate).toBeLessThanOrEqual(30_000);
      // Only 429 and 503 carry it meaningfully; elsewhere it is ignored.
      expect(((await failure({ status: 500, headers: { 'retry-after': '7' } })) as WebhookError).retryAfterMs).toBeUndefined();
    });
  });

  it('keeps credentials in the webhook URL out of its errors', async () => {
    respond = () => ({ status: 500 });
    const withCredentials = url.replace('http://', 'http://hook:s3cr3t@');
    const error = await Promise.resolve(createWebhookHandler({ url: withCredentials })(makeEvent(), context)).catch((e: unknown) => e);
    expect((error as Error).message).not.toContain('s3cr3t');
    expect((error as Error).message).toContain('answered 500');
  });

  it('fails when nothing listens', async () => {
    const handler = createWebhookHandler({ url: 'http://127.0.0.1:9/nothing', timeoutMs: 1000 });
    await expect(handler(makeEvent(), context)).rejects.toThrow(/could not be reached/);
  });
});
