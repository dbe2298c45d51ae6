import { gatewayTargets } from '../targets/gateway-targets.js';
import type { BrokerTarget } from '../targets/target.js';

/** A target under the shape it had before tests/targets/: names taken through `name(prefix, kind)`. */
export type FaultTarget = Omit<BrokerTarget, 'name'> & { name(prefix: string, kind: 'topic' | 'consumer'): string };

/**
 * @deprecated Use `gatewayTargets()` (tests/targets/gateway-targets.ts); this stays only for
 * tests/e2e/resume-on-another-instance.test.ts until it moves over.
 */
export async function faultTargets(): Promise<FaultTarget[]> {
  return (await gatewayTargets()).map((target) => ({
    ...target,
    name: (prefix, kind) => (kind === 'topic' ? target.newTopic(prefix) : target.newConsumer(prefix)),
  }));
}
