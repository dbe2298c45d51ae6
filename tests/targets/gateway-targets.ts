import { kafkaTarget } from './kafka.js';
import { memoryTarget } from './memory.js';
import { natsTarget } from './nats.js';
import { rabbitMqTarget } from './rabbitmq.js';
import type { BrokerTarget } from './target.js';

/**
 * The brokers a gateway process runs on in the fault scenarios: memory always, each machine
 * broker when it answers (on CI an unreachable one fails the run, see `requireBroker`). Call it
 * at the top of a test file: each target cleans up after that file.
 */
export async function gatewayTargets(): Promise<BrokerTarget[]> {
  const live = [await rabbitMqTarget(), await kafkaTarget(), await natsTarget()];
  return [memoryTarget(), ...live.filter((target) => target !== undefined)];
}
