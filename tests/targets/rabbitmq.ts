import { afterAll } from 'vitest';
import type { RabbitMqBroker } from '../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { publishWithAmqplib } from './foreign-producers.js';
import { requireBroker } from '../helpers/brokers.js';
import { waitFor } from '../helpers/events.js';
import {
  createRabbitMqBroker,
  deleteRabbitMqObjects,
  listQueues,
  plainClient,
  RABBITMQ_URL,
  rabbitmqctl,
  restartRabbitMq,
  streamQueue,
} from '../helpers/rabbitmq.js';
import { CreatedNames, type BrokerTarget, type PublishTap } from './target.js';

const EXCHANGE = 'events';

/**
 * The machine's RabbitMQ, when it answers (on CI an unreachable one fails the run, see
 * `requireBroker`). After the file's tests it deletes the queues of the consumers the file used
 * (with their retry and dead-letter queues) and the stream queues of its topics.
 */
export async function rabbitMqTarget(): Promise<BrokerTarget | undefined> {
  const { hostname, port } = new URL(RABBITMQ_URL);
  if (!(await requireBroker('RabbitMQ', hostname, Number(port || 5672)))) return undefined;
  const names = new CreatedNames();
  let restarted = false;
  afterAll(async () => {
    // Whatever happened to a restart (a timed-out test abandons it), leave RabbitMQ running.
    if (restarted) {
      await rabbitmqctl('start_app');
      await rabbitmqctl('await_startup');
    }
    // The stream queues of the topics subscribed to: they outlive their subscriptions.
    const queues = new Set((await listQueues()).map((queue) => queue.name));
    const streams = [...names.topics].map((topic) => streamQueue(topic, EXCHANGE)).filter((stream) => queues.has(stream));
    await deleteRabbitMqObjects({ consumers: names.consumers, streams });
  }, 180_000);

  const create = (): RabbitMqBroker => names.watch(createRabbitMqBroker({ exchange: EXCHANGE }));
  return {
    name: 'RabbitMQ',
    broker: 'rabbitmq',
    features: create().features,
    env: { RABBITMQ_URL },
    create,
    restart: ({ downMs }) => {
      restarted = true;
      return restartRabbitMq(downMs);
    },
    ensureUp: async () => {
      await rabbitmqctl('await_startup');
    },
    publishForeign: (message) => publishWithAmqplib(RABBITMQ_URL, EXCHANGE, message),
    tap: tapRabbitMq,
    newTopic: names.newTopic,
    newConsumer: names.newConsumer,
  };
}

/** An exclusive queue bound to every routing key of `topic`: its depth is every copy published. */
async function tapRabbitMq(topic: string): Promise<PublishTap> {
  const client = await plainClient();
  await client.channel.assertExchange(EXCHANGE, 'topic', { durable: true });
  const { queue } = await client.channel.assertQueue('', { exclusive: true, autoDelete: true });
  await client.channel.bindQueue(queue, EXCHANGE, `${topic}.#`);
  return {
    async collect(timeoutMs) {
      // Confirmed persistent messages are in the queue: its depth is every copy published.
      const { messageCount } = await client.channel.checkQueue(queue);
      const copies = new Map<string, number>();
      let seen = 0;
      await client.channel.consume(
        queue,
        (message) => {
          if (!message) return;
          const id = String(message.properties.messageId);
          copies.set(id, (copies.get(id) ?? 0) + 1);
          seen++;
        },
        { noAck: true },
      );
      await waitFor(() => seen >= messageCount, timeoutMs, `${messageCount} copies from RabbitMQ`);
      return copies;
    },
    close: () => client.close(),
  };
}
