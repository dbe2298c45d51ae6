import type { GatewayConfig } from '../config/config.js';
import type { Logger } from '../util/logger.js';
import type { Broker } from './broker.js';
import { KafkaBroker } from './kafka/kafka-broker.js';
import { MemoryBroker } from './memory/memory-broker.js';
import { MemoryHub } from './memory/memory-hub.js';
import { NatsBroker } from './nats/nats-broker.js';
import { RabbitMqBroker } from './rabbitmq/rabbitmq-broker.js';

/** The broker adapter named by `BROKER`. */
export function createBroker(config: GatewayConfig, logger: Logger): Broker {
  switch (config.broker) {
    case 'memory':
      return new MemoryBroker({ hub: new MemoryHub(config.brokers.memory) });
    case 'rabbitmq':
      return new RabbitMqBroker({ ...config.brokers.rabbitmq, topics: config.brokers.topics }, logger);
    case 'kafka':
      return new KafkaBroker({ ...config.brokers.kafka, topics: config.brokers.topics }, logger);
    case 'nats':
      return new NatsBroker({ ...config.brokers.nats, topics: config.brokers.topics }, logger);
  }
}

export type { Broker } from './broker.js';
