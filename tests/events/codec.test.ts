import { describe, expect, it } from 'vitest';
import { decodeEvent, encodeEvent, toCloudEvent } from '../../src/events/codec.js';
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
