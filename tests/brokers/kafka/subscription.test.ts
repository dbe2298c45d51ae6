import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../../src/brokers/broker.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { createKafkaBroker, deleteTopicsCreatedByThisFile, KAFKA_HOST, KAFKA_PORT, withAdmin } from '../../helpers/kafka.js';

const groupsNamed = (prefix: string) =>
  withAdmin(async (admin) => (await admin.listGroups()).groups.map((g) => g.groupId).filter((id) => id.startsWith(prefix)));

if (await requireBroker('Kafka', KAFKA_HOST, KAFKA_PORT)) {
  deleteTopicsCreatedByThisFile();
  describe('Kafka fan-out subscriptions', () => {
    const brokers: Broker[] = [];
    afterEach(async () => {
      await Promise.all(brokers.splice(0).map((b) => b.close()));
    });

    it('reads from the end of the topic in a group of its own, deleted on close', async () => {
      const topic = uniqueName('live');
      const clientId = uniqueName('gw');
      const broker = createKafkaBroker({ clientId });
      brokers.push(broker);
      await broker.connect();
      const old = makeEvent({ topic });
      await broker.publish([old]);

      const received: GatewayEvent[] = [];
      const subscription = await broker.subscribe(topic, (event) => received.push(event));
      const groups = await groupsNamed(`${clientId}.subscription.${topic}.`);
      expect(groups).toHaveLength(1);
      const fresh = makeEvent({ topic });
      await broker.publish([fresh]);
      await waitFor(() => received.length >= 1, 15_000, 'fresh event');
      // The event published before subscribe() never arrives; the fresh one arrives once.
      const marker = makeEvent({ topic });
      await broker.publish([marker]);
      await waitFor(() => received.some((e) => e.id === marker.id), 15_000, 'marker');
      expect(received.map((e) => e.id)).toEqual([fresh.id, marker.id]);

      await subscription.close();
      expect(await groupsNamed(`${clientId}.subscription.${topic}.`)).toEqual([]);
    });
  });
}
