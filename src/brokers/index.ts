import type { GatewayConfig } from '../config/config.js';
import type { Logger } from '../util/logger.js';
import type { Broker } from './broker.js';
import { MemoryBroker } from './memory/memory-broker.js';

/** The broker adapter named by `BROKER`. */
export function createBroker(config: GatewayConfig, _logger: Logger): Broker {
  switch (config.broker) {
    case 'memory':
      return new MemoryBroker();
  }
}

export type { Broker } from './broker.js';
