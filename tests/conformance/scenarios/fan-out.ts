import { expect } from 'vitest';
import type { Broker } from '../../../src/brokers/broker.js';
import { SubscriptionHub } from '../../../src/subscriptions/subscription-hub.js';
import { silentLogger } from '../../../src/util/logger.js';
import { makeEvent, uniqueName } from '../../helpers/events.js';
import { expectOrderedPerKey, waves, type Scenario } from '../scenario.js';

const ids = (list: readonly { id: string }[]) => list.map((e) => e.id).sort();

/** Live fan-out to GraphQL subscribers: one broker subscription per topic, and resuming after a cursor. */
export const fanOutScenarios: readonly Scenario[] = [
  {
    name: 'fans out to many GraphQL subscribers through one broker subscription',
    async run(_target, { connect }) {
      const broker = await connect();
      let opened = 0;
      const counting: Broker = Object.assign(Object.create(broker) as Broker, {
        subscribe: (...args: Parameters<Broker['subscribe']>) => {
          opened++;
          return broker.subscribe(...args);
        },
      });
      const hub = new SubscriptionHub(counting, silentLogger);
      const topic = uniqueName('conf');
      const streams = await Promise.all(Array.from({ length: 100 }, () => hub.subscribe(topic)));
      expect(opened).toBe(1);
      const event = makeEvent({ topic });
      await broker.publish([event]);
      for (const stream of streams) expect((await stream.next()).value?.event).toEqual(event);
      await hub.close();
    },
  },
  {
    name: 'resumes a subscription after its cursor, in another process too: nothing missed, nothing repeated, in order per key',
    needs: ['replay'],
    async run(_target, { connect, take }) {
      const first = await connect();
      const second = await connect();
      const topic = uniqueName('conf');
      const hub = new SubscriptionHub(first, silentLogger);
      const stream = await hub.subscribe(topic);
      const events = Array.from({ length: 60 }, (_, i) => makeEvent({ topic, key: `k${i % 4}`, data: { seq: i } }));
      for (const wave of waves(events.slice(0, 20))) await first.publish(wave);
      const seen = await take(stream, 20);
      expect(ids(seen.map((d) => d.event))).toEqual(ids(events.slice(0, 20)));
      expect(seen.every((d) => typeof d.cursor === 'string')).toBe(true);
      // The client drops after the 10th event it got; 30 more are published while it is away. (On a
      // broker with partitions "the first 10" are in delivery order, not publish order.)
      const cursor = seen[9]!.cursor!;
      const before = new Set(seen.slice(0, 10).map((d) => d.event.id));
      stream.close();
      for (const wave of waves(events.slice(20, 50))) await first.publish(wave);
      // It comes back through another gateway process (another connection, another hub).
      const elsewhere = new SubscriptionHub(second, silentLogger);
      const resumed = await elsewhere.subscribe(topic, { after: cursor });
      const caughtUp = await take(resumed, 40);
      for (const wave of waves(events.slice(50))) await second.publish(wave);
      const all = [...caughtUp, ...(await take(resumed, 10))].map((d) => d.event);
      expect(ids(all)).toEqual(ids(events.filter((e) => !before.has(e.id))));
      expectOrderedPerKey(all);
      // A cursor is a position in the broker's log, not a copy of what was sent: the 40 events caught
      // up were all there was then, so resuming after the last of them brings exactly the 10 after.
      const again = await elsewhere.subscribe(topic, { after: caughtUp.at(-1)!.cursor! });
      expect(ids((await take(again, 10)).map((d) => d.event))).toEqual(ids(events.slice(50)));
      await hub.close();
      await elsewhere.close();
    },
  },
  {
    name: 'hands a resuming subscriber over to the shared subscription without a gap or a repeat while events keep coming',
    needs: ['replay'],
    async run(_target, { connect, take }) {
      const broker = await connect();
      const topic = uniqueName('conf');
      const hub = new SubscriptionHub(broker, silentLogger);
      const live = await hub.subscribe(topic);
      const events = Array.from({ length: 300 }, (_, i) => makeEvent({ topic, key: `k${i % 5}`, data: { seq: i } }));
      for (const wave of waves(events.slice(0, 5))) await broker.publish(wave);
      const cursor = (await take(live, 5))[4]!.cursor!;
      // Resume while the rest is being published: the handover happens mid-stream.
      const publishing = (async () => {
        for (const wave of waves(events.slice(5))) await broker.publish(wave);
      })();
      const resumed = await hub.subscribe(topic, { after: cursor });
      await publishing;
      const got = (await take(resumed, 295)).map((d) => d.event);
      expect(ids(got)).toEqual(ids(events.slice(5)));
      expectOrderedPerKey(got);
      await hub.close();
    },
  },
  {
    name: 'refuses a cursor it did not make',
    needs: ['replay'],
    async run(_target, { connect }) {
      const broker = await connect();
      const hub = new SubscriptionHub(broker, silentLogger);
      await expect(hub.subscribe(uniqueName('conf'), { after: 'not-a-cursor' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
      const elsewhere = Buffer.from(JSON.stringify({ l: 'a log that does not exist', p: { '': 5 } })).toString('base64url');
      await expect(hub.subscribe(uniqueName('conf'), { after: elsewhere })).rejects.toMatchObject({ code: 'CURSOR_EXPIRED' });
      await hub.close();
    },
  },
];
