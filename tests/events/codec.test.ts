import { describe, expect, it } from 'vitest';
import { decodeEvent, decodeStoredEvent, encodeEvent, toCloudEvent } from '../../src/events/codec.js';
import { InvalidMessageError } from '../../src/errors.js';
import { makeEvent } from '../helpers/events.js';

describe('CloudEvents codec', () => {
  it('round-trips every attribute through structured JSON', () => {
    const event = makeEvent({ subject: 's', key: 'k', causationId: 'c', data: { a: [1, { b: null }] } });
    expect(decodeEvent(encodeEvent(event), { topic: 'ignored' })).toEqual(event);
  });

  it('leaves absent optional attributes out instead of sending null', () => {
    const ce = toCloudEvent(makeEvent({ subject: null, key: null, causationId: null }));
    expect(Object.keys(ce)).not.toContain('subject');
    expect(Object.keys(ce)).not.toContain('partitionkey');
    expect(Object.keys(ce)).not.toContain('causationid');
  });

  it('accepts a minimal CloudEvent from a plain client, taking the topic from where it arrived', () => {
    const event = decodeEvent(JSON.stringify({ specversion: '1.0', id: 'x1', source: 'shop', type: 'order.created', data: { n: 1 } }), {
      topic: 'orders',
    });
    expect(event).toMatchObject({ id: 'x1', topic: 'orders', dataContentType: 'application/json', key: null, data: { n: 1 } });
  });

  describe('extension attributes, dataschema and trace context', () => {
    const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    /** What a foreign producer puts on the broker: every attribute the gateway models, and some it does not. */
    const foreign = {
      specversion: '1.0',
      id: 'f-1',
      source: 'urn:shop',
      type: 'order.created',
      subject: 'order/1',
      time: '2026-01-02T03:04:05.000Z',
      datacontenttype: 'application/json',
      dataschema: 'https://schemas.example.com/order/v2.json',
      data: { n: 1 },
      topic: 'orders',
      partitionkey: 'o-1',
      correlationid: 'c-1',
      traceparent: TRACEPARENT,
      tracestate: 'shop=a1,vendor=b2',
      tenant: 'acme',
      priority: 7,
      beta: true,
    };

    it('keeps them through decode → store → encode, to the same JSON and the same bytes', () => {
      const body = JSON.stringify(foreign);
      const event = decodeEvent(body, { topic: 'ignored' });
      expect(event).toMatchObject({
        dataSchema: foreign.dataschema,
        traceparent: TRACEPARENT,
        tracestate: 'shop=a1,vendor=b2',
        extensions: { tenant: 'acme', priority: 7, beta: true },
      });
      // The body says exactly what the event holds: it goes on (webhook, dead letter) byte for byte.
      expect(encodeEvent(event).toString()).toBe(body);
      // As the stores do: the text encodeEvent gives is written, and read back with decodeStoredEvent.
      const stored = decodeStoredEvent(encodeEvent(event).toString());
      expect(stored).toEqual(event);
      // Encoded afresh (no cached body), the event gives the same document.
      expect(toCloudEvent(stored)).toEqual(foreign);
      expect(JSON.parse(encodeEvent({ ...stored }).toString())).toEqual(foreign);
    });

    it('round-trips an event the gateway made with them', () => {
      const event = makeEvent({ dataSchema: 'urn:schema:1', traceparent: TRACEPARENT, tracestate: 'a=1', extensions: { tenant: 'acme', n: 0, off: false } });
      const body = encodeEvent(event);
      expect(decodeEvent(body, { topic: 'x' })).toEqual(event);
      expect(decodeStoredEvent(body.toString())).toEqual(event);
    });

    it('drops what is not a valid attribute, without refusing the event, and encodes it anew', () => {
      const body = JSON.stringify({
        ...foreign,
        traceparent: '00-not-a-trace',
        tracestate: 'a=1',
        Upper: 'x',
        'x-dash': 'y',
        nested: { a: 1 },
        list: [1],
        nothing: null,
      });
      const event = decodeEvent(body, { topic: 'orders' });
      expect(event.traceparent).toBeNull();
      expect(event.tracestate).toBeNull();
      expect(event.extensions).toEqual({ tenant: 'acme', priority: 7, beta: true });
      const sent = JSON.parse(encodeEvent(event).toString()) as Record<string, unknown>;
      expect(sent).toEqual({ ...foreign, traceparent: undefined, tracestate: undefined });
      expect(Object.keys(sent)).not.toContain('traceparent');
    });

    it('drops an invalid tracestate alone', () => {
      const event = decodeEvent(JSON.stringify({ ...foreign, tracestate: 'Not Valid' }), { topic: 'orders' });
      expect(event).toMatchObject({ traceparent: TRACEPARENT, tracestate: null });
      expect(JSON.parse(encodeEvent(event).toString())).not.toHaveProperty('tracestate');
    });

    it('takes the trace context from the native headers when the body has none; the body wins when it has one', () => {
      const other = '00-11111111111111111111111111111111-2222222222222222-01';
      const { traceparent: _t, tracestate: _s, ...untraced } = foreign;
      const fromHeader = decodeEvent(JSON.stringify(untraced), { topic: 'orders', traceparent: other, tracestate: 'h=1' });
      expect(fromHeader).toMatchObject({ traceparent: other, tracestate: 'h=1' });
      expect(JSON.parse(encodeEvent(fromHeader).toString())).toMatchObject({ traceparent: other, tracestate: 'h=1' });
      expect(decodeEvent(JSON.stringify(foreign), { topic: 'orders', traceparent: other }).traceparent).toBe(TRACEPARENT);
      expect(decodeEvent(JSON.stringify(untraced), { topic: 'orders', traceparent: 'garbage' }).traceparent).toBeNull();
    });

    it('never lets an extension named like a modelled attribute override it', () => {
      const event = makeEvent({ topic: 'orders', extensions: { topic: 'other', tenant: 'acme' } });
      expect(toCloudEvent(event)).toMatchObject({ topic: 'orders', tenant: 'acme' });
    });

    it('refuses a dataschema that is not text, as any other attribute', () => {
      expect(() => decodeEvent(JSON.stringify({ ...foreign, dataschema: 5 }), { topic: 'orders' })).toThrow(/dataschema/);
    });
  });

  it.each([
    ['not json', /not JSON/],
    [JSON.stringify({ id: 'x', source: 's', type: 't' }), /specversion/],
    [JSON.stringify({ specversion: '1.0', source: 's', type: 't' }), /id/],
    [JSON.stringify({ specversion: '1.0', id: 'x', source: 's', type: 't', time: 'yesterday' }), /time/],
  ])('rejects %s', (body, message) => {
    expect(() => decodeEvent(body, { topic: 't' })).toThrow(InvalidMessageError);
    expect(() => decodeEvent(body, { topic: 't' })).toThrow(message);
  });
});
