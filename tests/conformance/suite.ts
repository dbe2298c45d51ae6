import { afterEach, beforeAll, describe, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import type { DeliveredEvent } from '../../src/subscriptions/subscription-hub.js';
import { gql, startTestApp, type TestAppOptions } from '../helpers/app.js';
import { removeDatabase, tempDatabasePath } from '../helpers/store.js';
import type { Scenario, ScenarioContext, TestApp } from './scenario.js';
import { cloudEventsScenarios } from './scenarios/cloudevents.js';
import { deliveryScenarios } from './scenarios/delivery.js';
import { fanOutScenarios } from './scenarios/fan-out.js';
import { lifecycleScenarios } from './scenarios/lifecycle.js';
import { traceContextScenarios } from './scenarios/trace-context.js';
import type { BrokerTarget } from '../targets/target.js';

/**
 * Every behaviour a broker adapter must show, by name. Each scenario uses its own topics and
 * consumer names, so targets and scenarios can share one broker.
 */
export const scenarios: readonly Scenario[] = [
  ...deliveryScenarios,
  ...fanOutScenarios,
  ...lifecycleScenarios,
  ...traceContextScenarios,
  ...cloudEventsScenarios,
];

/** Whether `target` has every feature and control `scenario` needs. */
const runsOn = (scenario: Scenario, target: BrokerTarget): boolean =>
  (scenario.needs ?? []).every((feature) => target.features[feature]) && (scenario.uses ?? []).every((control) => target[control] !== undefined);

/** The one suite every broker adapter passes against the live broker: each scenario, once per target. */
export function defineConformanceSuite(target: BrokerTarget): void {
  const T = target.timeoutMs ?? 10_000;

  describe(`broker conformance: ${target.name}`, () => {
    const brokers: Broker[] = [];
    const apps: TestApp[] = [];
    const databases: string[] = [];
    const deferred: (() => unknown)[] = [];

    const context: ScenarioContext = {
      T,
      async connect() {
        const broker = target.create();
        brokers.push(broker);
        await broker.connect();
        return broker;
      },
      async gateway(options: TestAppOptions) {
        const app = await startTestApp({ ...options, broker: options.broker ?? target.create() });
        apps.push(app);
        return app;
      },
      sharedDatabase() {
        const path = tempDatabasePath();
        databases.push(path);
        return path;
      },
      publishViaGateway: (app, topic, count, extra = () => ({})) =>
        gql<{ publishEvents: { event: { id: string } }[] }>(
          app.url,
          `mutation($inputs: [PublishEventInput!]!) { publishEvents(inputs: $inputs) { event { id } } }`,
          { inputs: Array.from({ length: count }, (_, i) => ({ topic, type: 'item.created', data: { seq: i }, ...extra(i) })) },
        ).then((r) => {
          if (r.errors) throw new Error(JSON.stringify(r.errors));
          return r.data!.publishEvents.map((p) => p.event.id);
        }),
      async take(stream: AsyncIterator<DeliveredEvent>, n: number) {
        const taken: DeliveredEvent[] = [];
        while (taken.length < n) {
          const next = await Promise.race([
            stream.next(),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${taken.length} of ${n} events`)), T)),
          ]);
          if (next.done) throw new Error(`stream ended after ${taken.length} of ${n} events`);
          taken.push(next.value);
        }
        return taken;
      },
      defer(cleanup) {
        deferred.push(cleanup);
      },
    };

    beforeAll(async () => {
      await target.ensureUp?.();
    });

    afterEach(async () => {
      // Clients first (a subscriber of a gateway about to stop), then gateways, then connections.
      for (const cleanup of deferred.splice(0).reverse()) await cleanup();
      await Promise.all(apps.splice(0).map((app) => app.dispose()));
      await Promise.all(brokers.splice(0).map((broker) => broker.close()));
      for (const path of databases.splice(0)) removeDatabase(path);
    });

    for (const scenario of scenarios) {
      it.runIf(runsOn(scenario, target))(scenario.name, () => scenario.run(target, context), scenario.timeoutMs);
    }
  });
}
