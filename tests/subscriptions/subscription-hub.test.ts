import { describe, expect, it } from 'vitest';
import type { GatewayEvent } from '../../src/events/event.js';
import { MemoryBroker } from '../../src/brokers/memory/memory-broker.js';
import { MemoryHub } from '../../src/brokers/memory/memory-hub.js';
import { SubscriberOverflowError, SubscriptionHub, type DeliveredEvent } from '../../src/subscriptions/subscription-hub.js';
import { silentLogger } from '../../src/util/logger.js';
import { makeEvent, waitFor } from '../helpers/events.js';

class CountingBroker extends MemoryBroker {
  subscribeCalls = 0;
  closedSubscriptions = 0;
  override async subscribe(...args: Parameters<MemoryBroker['subscribe']>) {
    this.subscribeCalls++;
    const sub = await super.subscribe(...args);
    return {
      ...sub,
      close: async () => {
        this.closedSubscriptions++;
        return sub.close();
      },
    };
  }
}

async function take(stream: AsyncIterator<DeliveredEvent>, n: number): Promise<GatewayEvent[]> {
  const out: GatewayEvent[] = [];
  while (out.length < n) {
    const next = await stream.next();
    if (next.done) break;
    out.push(next.value.event);
  }
  return out;
}

describe('subscription hub', () => {
  it('shares one broker subscription per topic between all subscribers', async () => {
    const broker = new CountingBroker();
    const hub = new SubscriptionHub(broker, silentLogger);
    const streams = await Promise.all(Array.from({ length: 50 }, () => hub.subscribe('orders')));
    expect(broker.subscribeCalls).toBe(1);
    await broker.publish([makeEvent({ topic: 'orders', id: 'e1' })]);
    for (const s of streams) expect((await take(s, 1))[0]!.id).toBe('e1');
    for (const s of streams.slice(1)) s.close();
    expect(broker.closedSubscriptions).toBe(0);
    streams[0]!.close();
    await waitFor(() => broker.closedSubscriptions === 1, 1000, 'broker subscription closed');
    expect(hub.stats()).toEqual([]);
  });

  it('filters by type per subscriber', async () => {
    const broker = new MemoryBroker();
    const hub = new SubscriptionHub(broker, silentLogger);
    const created = await hub.subscribe('orders', { types: ['order.created'] });
    const all = await hub.subscribe('orders');
    await broker.publish([makeEvent({ topic: 'orders', type: 'order.paid' }), makeEvent({ topic: 'orders', type: 'order.created' })]);
    expect((await take(created, 1)).map((e) => e.type)).toEqual(['order.created']);
    expect((await take(all, 2)).map((e) => e.type)).toEqual(['order.paid', 'order.created']);
  });

  it('cuts off a subscriber that falls behind its buffer, without touching the others', async () => {
    const broker = new MemoryBroker();
    const hub = new SubscriptionHub(broker, silentLogger, { bufferSize: 5 });
    const slow = await hub.subscribe('orders');
    const fast = await hub.subscribe('orders');
    const received: string[] = [];
    const reading = (async () => {
      for await (const { event: e } of fast) {
        received.push(e.id);
        if (received.length === 20) break;
      }
    })();
    for (let i = 0; i < 20; i++) {
      await broker.publish([makeEvent({ topic: 'orders', id: `e${i}` })]);
      await new Promise((r) => setImmediate(r));
    }
    await reading;
    expect(received).toHaveLength(20);
    await expect(slow.next()).rejects.toBeInstanceOf(SubscriberOverflowError);
    expect((await slow.next()).done).toBe(true);
  });
});

describe('subscription hub: resuming after a cursor', () => {
  it('opens a broker subscription of its own for a resuming subscriber and closes it once caught up', async () => {
    const broker = new CountingBroker();
    const hub = new SubscriptionHub(broker, silentLogger);
    const live = await hub.subscribe('orders');
    await broker.publish([makeEvent({ topic: 'orders', id: 'e1' }), makeEvent({ topic: 'orders', id: 'e2' })]);
    const [first] = await Promise.all([live.next().then((n) => n.value as DeliveredEvent), live.next()]);
    await broker.publish([makeEvent({ topic: 'orders', id: 'e3' })]);
    await take(live, 1);
    const resumed = await hub.subscribe('orders', { after: first!.cursor });
    expect((await take(resumed, 2)).map((e) => e.id)).toEqual(['e2', 'e3']);
    // Caught up: its own subscription is gone; the shared one carries on for both.
    await waitFor(() => broker.closedSubscriptions === 1, 1000, 'own subscription closed');
    expect(broker.subscribeCalls).toBe(2);
    await broker.publish([makeEvent({ topic: 'orders', id: 'e4' })]);
    expect((await take(resumed, 1)).map((e) => e.id)).toEqual(['e4']);
    expect((await take(live, 1)).map((e) => e.id)).toEqual(['e4']);
  });

  it('refuses a cursor the memory broker no longer keeps with CURSOR_EXPIRED', async () => {
    const broker = new MemoryBroker({ hub: new MemoryHub({ retainEvents: 3 }) });
    const hub = new SubscriptionHub(broker, silentLogger);
    const live = await hub.subscribe('orders');
    await broker.publish(Array.from({ length: 6 }, (_, i) => makeEvent({ topic: 'orders', id: `e${i}` })));
    const first = (await live.next()).value as DeliveredEvent;
    await expect(hub.subscribe('orders', { after: first.cursor })).rejects.toMatchObject({ code: 'CURSOR_EXPIRED' });
    // One the log still holds resumes.
    await take(live, 3);
    const fourth = (await live.next()).value as DeliveredEvent;
    const resumed = await hub.subscribe('orders', { after: fourth.cursor });
    expect((await take(resumed, 1)).map((e) => e.id)).toEqual(['e5']);
  });
});

describe('subscription hub: a resuming subscriber cut off while it catches up', () => {
  it('fails it with SUBSCRIBER_TOO_SLOW and closes the broker subscription it opened', async () => {
    const broker = new CountingBroker();
    const cursors = new SubscriptionHub(broker, silentLogger);
    const live = await cursors.subscribe('orders');
    await broker.publish(Array.from({ length: 6 }, (_, i) => makeEvent({ topic: 'orders', id: `e${i}` })));
    const first = (await live.next()).value as DeliveredEvent;
    await cursors.close();
    const hub = new SubscriptionHub(broker, silentLogger, { bufferSize: 2 });
    // Five events to replay, two may wait: nobody reads while it subscribes.
    const resumed = await hub.subscribe('orders', { after: first.cursor });
    await waitFor(() => broker.closedSubscriptions === 3, 1000, 'its own and the shared subscription closed');
    await expect(resumed.next()).rejects.toBeInstanceOf(SubscriberOverflowError);
    expect(hub.stats()).toEqual([]);
  });
});
