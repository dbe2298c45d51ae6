import { expect } from 'vitest';
import type { EventHandler } from '../../../src/consumers/handlers/handler.js';
import { consumeWith } from '../../helpers/consume.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import type { Scenario } from '../scenario.js';

/** Consumers closed mid-stream, lag while messages wait, and the broker process restarted. */
export const lifecycleScenarios: readonly Scenario[] = [
  {
    name: 'loses nothing when a consumer is closed while it is consuming',
    needs: ['durableConsumers'],
    async run(_target, { T, gateway, sharedDatabase, publishViaGateway }) {
      const topic = uniqueName('conf');
      const name = uniqueName('closing');
      const databasePath = sharedDatabase();
      const handled: string[] = [];
      const handler: EventHandler = async (event) => {
        await new Promise((r) => setTimeout(r, 10));
        handled.push(event.id);
      };
      const first = await gateway({ databasePath, consumers: [{ name, topic, prefetch: 10 }], handlers: { [name]: handler } });
      const ids = await publishViaGateway(first, topic, 100);
      await waitFor(() => handled.length >= 20, T, 'some handled');
      await first.dispose();
      const countAtClose = handled.length;
      expect(countAtClose).toBeLessThan(100);
      const second = await gateway({ databasePath, consumers: [{ name, topic, prefetch: 10 }], handlers: { [name]: handler } });
      await waitFor(
        async () => (await Promise.all(ids.map((id) => second.services.processed.has(name, id)))).every(Boolean),
        T + 10_000,
        'all processed after reopen',
      );
      expect(new Set(handled).size).toBe(100);
    },
  },
  {
    name: 'reports consumer lag while messages wait',
    needs: ['lag'],
    async run(_target, { T, connect }) {
      const broker = await connect();
      const topic = uniqueName('conf');
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const consumer = await consumeWith(broker, { name: uniqueName('lag'), topic, prefetch: 1 }, async () => {
        await gate;
        return { kind: 'ack' };
      });
      await broker.publish(Array.from({ length: 20 }, () => makeEvent({ topic })));
      await waitFor(async () => ((await consumer.lag()) ?? 0) >= 10, T, 'lag of at least 10');
      release();
      await waitFor(async () => (await consumer.lag()) === 0, T + 10_000, 'lag back to 0');
      await consumer.close();
    },
  },
  {
    name: 'delivers every committed outbox event when the broker restarts mid-stream',
    needs: ['persistent'],
    uses: ['restart'],
    timeoutMs: 240_000,
    async run(target, { T, gateway, publishViaGateway }) {
      const topic = uniqueName('conf');
      const name = uniqueName('restart');
      const handled = new Set<string>();
      const app = await gateway({ consumers: [{ name, topic, prefetch: 20 }], handlers: { [name]: (event) => void handled.add(event.id) } });
      const ids: string[] = [];
      let publishing = true;
      const producer = (async () => {
        let i = 0;
        while (publishing) {
          ids.push(...(await publishViaGateway(app, topic, 5, () => ({ key: `k${i++ % 7}` }))));
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await waitFor(() => handled.size >= 20, T, 'stream flowing');
      await target.restart!({ downMs: 2000 });
      await new Promise((r) => setTimeout(r, 1000));
      publishing = false;
      await producer;
      await waitFor(() => ids.every((id) => handled.has(id)), 120_000, `all ${ids.length} committed events handled`);
      // An event can reach the consumer while its confirm is lost in the restart: its row is
      // then published again after a backoff (a duplicate the consumer skips), never left behind.
      await waitFor(async () => (await app.services.outbox.count('PENDING')) === 0, 60_000, 'outbox drained');
      expect(await app.services.outbox.count('PUBLISHED')).toBe(ids.length);
    },
  },
];
