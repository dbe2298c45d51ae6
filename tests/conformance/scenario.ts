import { expect } from 'vitest';
import type { Broker, BrokerFeatures } from '../../src/brokers/broker.js';
import type { GatewayEvent } from '../../src/events/event.js';
import type { DeliveredEvent } from '../../src/subscriptions/subscription-hub.js';
import type { startTestApp, TestAppOptions } from '../helpers/app.js';
import type { BrokerTarget } from '../targets/target.js';

export type TestApp = Awaited<ReturnType<typeof startTestApp>>;

/** Optional controls of a target a scenario may rely on. */
export type TargetControl = keyof Pick<BrokerTarget, 'restart' | 'publishForeign'>;

/**
 * One named behaviour every broker adapter must show, as Watermill's `TestPubSub` lists its
 * cases: the suite runs each scenario on each target whose features and controls it needs, and
 * skips it (visibly) elsewhere. A scenario never asks which broker it runs on.
 */
export interface Scenario {
  /** The test name: what a user of any broker can count on. */
  readonly name: string;
  /** Broker features the behaviour relies on; skipped on a target without all of them. */
  readonly needs?: readonly (keyof BrokerFeatures)[];
  /** Target controls the scenario uses (restarting the broker, a foreign producer); skipped without them. */
  readonly uses?: readonly TargetControl[];
  /** A time limit of its own, for scenarios that restart a broker. */
  readonly timeoutMs?: number;
  run(target: BrokerTarget, context: ScenarioContext): Promise<void>;
}

/**
 * What the suite gives a scenario. Everything opened through it (connections, gateways,
 * databases, whatever `defer` was handed) is closed after the scenario, passed or failed.
 */
export interface ScenarioContext {
  /** How long one real operation may take on this target (`BrokerTarget.timeoutMs`, else 10 s). */
  readonly T: number;
  /** A new, connected broker connection, as one gateway process would open it. */
  connect(): Promise<Broker>;
  /** A gateway "process": its own broker connection (unless given one), optionally sharing a database with others. */
  gateway(options: TestAppOptions): Promise<TestApp>;
  /** A database file for gateways that share one, deleted afterwards. */
  sharedDatabase(): string;
  /** Publishes `count` events of type `item.created` (`data: { seq }`) through the gateway's GraphQL API; their ids. */
  publishViaGateway(app: TestApp, topic: string, count: number, extra?: (i: number) => Record<string, unknown>): Promise<string[]>;
  /** Reads `n` events from a hub stream, failing after `T` without one. */
  take(stream: AsyncIterator<DeliveredEvent>, n: number): Promise<DeliveredEvent[]>;
  /** Runs `cleanup` after the scenario (webhook receivers, clients). */
  defer(cleanup: () => unknown): void;
}

/** Events for one publish call: the relay never puts two events of one key in one call. */
export function* waves(events: readonly GatewayEvent[]): Generator<GatewayEvent[]> {
  let wave: GatewayEvent[] = [];
  let keys = new Set<string | null>();
  for (const event of events) {
    if (event.key !== null && keys.has(event.key)) {
      yield wave;
      wave = [];
      keys = new Set();
    }
    wave.push(event);
    keys.add(event.key);
  }
  if (wave.length > 0) yield wave;
}

const seqOf = (event: GatewayEvent) => (event.data as { seq: number }).seq;

export function expectOrderedPerKey(events: readonly GatewayEvent[]): void {
  const byKey = new Map<string, number[]>();
  for (const event of events) byKey.set(event.key!, [...(byKey.get(event.key!) ?? []), seqOf(event)]);
  for (const [, seqs] of byKey) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
}
