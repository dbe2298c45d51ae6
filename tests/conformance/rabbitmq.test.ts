import { afterAll } from 'vitest';
import type { ConsumerBinding, ConsumerHandle, DeliverySink } from '../../src/brokers/broker.js';
import { RabbitMqBroker } from '../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { silentLogger } from '../../src/util/logger.js';
import { requireBroker } from '../helpers/brokers.js';
import { deleteRabbitMqObjects, RABBITMQ_URL, rabbitmqctl, restartRabbitMq } from '../helpers/rabbitmq.js';
import { defineConformanceSuite } from './suite.js';

/** Consumer names and subscribed topics the suite used, so their queues and streams can be deleted afterwards. */
const consumers = new Set<string>();
const streams = new Set<string>();

class RecordingRabbitMqBroker extends RabbitMqBroker {
  override consume(binding: ConsumerBinding, sink: DeliverySink): Promise<ConsumerHandle> {
    consumers.add(binding.name);
    return super.consume(binding, sink);
  }

  override subscribe(...args: Parameters<RabbitMqBroker['subscribe']>) {
    streams.add(`events.stream.${args[0]}`);
    return super.subscribe(...args);
  }
}

function create(): RabbitMqBroker {
  return new RecordingRabbitMqBroker({ url: RABBITMQ_URL, exchange: 'events', topics: {} }, silentLogger);
}

if (await requireBroker('RabbitMQ', '127.0.0.1', 5672)) {
  afterAll(() => deleteRabbitMqObjects({ consumers, streams }));

  defineConformanceSuite({
    name: 'RabbitMQ',
    features: create().features,
    create,
    restart: ({ downMs }) => restartRabbitMq(downMs),
    ensureUp: async () => {
      await rabbitmqctl('await_startup');
    },
  });
}
