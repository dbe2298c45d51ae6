import { describe, it } from 'vitest';
import { waitFor } from '../helpers/events.js';
import { reportFault, tally } from './fault-tally.js';
import { GatewayScope } from '../helpers/gateway-process.js';
import { brokerState, type BrokerState, PublishStream } from '../helpers/publish-stream.js';
import { gatewayTargets } from '../targets/gateway-targets.js';

const targets = await gatewayTargets();

/** How long the broker stays down while mutations keep coming. */
const DOWN_MS = 30_000;
const PER_SECOND = 25;

/** Polls the `brokers` query and keeps every change of circuit state it sees, with its time. */
class CircuitWatch {
  readonly circuits: BrokerState['circuit'][] = [];
  readonly changedAt: number[] = [];
  sawDisconnected = false;
  private readonly timer: NodeJS.Timeout;

  constructor(url: string) {
    const poll = async () => {
      const state = await brokerState(url).catch(() => undefined);
      if (!state) return;
      if (this.circuits.at(-1) !== state.circuit) {
        this.circuits.push(state.circuit);
        this.changedAt.push(Date.now());
      }
      if (!state.connected) this.sawDisconnected = true;
    };
    this.timer = setInterval(() => void poll(), 200);
  }

  get current(): BrokerState['circuit'] | undefined {
    return this.circuits.at(-1);
  }

  get opened(): boolean {
    return this.circuits.some((c) => c !== 'CLOSED');
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * Scenario 2: the broker stops for 30 s while mutations keep coming. Mutations keep succeeding
 * (they only need the store), the relay's circuit opens and closes again (seen through the
 * `brokers` query), and the backlog drains with nothing lost. Each test stops a different
 * broker, so they run side by side.
 */
describe.concurrent('fault: broker down for 30 s', () => {
  for (const target of targets) {
    it.runIf(target.restart !== undefined && target.features.persistent && target.features.durableConsumers)(
      `[${target.broker}] mutations keep succeeding, the circuit opens and closes, the backlog drains`,
      async ({ expect }) => {
        const scope = new GatewayScope();
        const topic = target.newTopic('outage');
        const consumer = target.newConsumer('outage');
        const recorder = await scope.recorder();
        const gateway = await scope.start({
          broker: target.broker,
          databasePath: scope.database(),
          consumers: [{ name: consumer, topic, webhook: { url: recorder.url }, backoff: { initialMs: 200, maxMs: 2000, multiplier: 2, jitter: 0.2 } }],
          env: target.env,
        });
        const stream = new PublishStream({ target: () => gateway.url, topic, count: 6000, perSecond: PER_SECOND });
        let watch: CircuitWatch | undefined;
        try {
          await waitFor(() => recorder.accepted.size >= PER_SECOND, 60_000, 'the stream to reach the webhook');
          watch = new CircuitWatch(gateway.url);
          await waitFor(() => watch!.current === 'CLOSED', 5000, 'a closed circuit before the outage');
          const before = stream.committed.length;
          const outageStart = Date.now();
          let whileDown = 0;
          const outage = target.restart!({ downMs: DOWN_MS }).then(() => (whileDown = stream.committed.length - before));
          try {
            await waitFor(() => watch!.opened, DOWN_MS + 30_000, 'the circuit to open while the broker is down');
          } finally {
            // The broker is started again whatever happened above.
            await outage;
          }
          await waitFor(() => watch!.current === 'CLOSED', 90_000, 'the circuit to close after the broker came back');
          await stream.waitForCommitted(stream.committed.length + PER_SECOND, 30_000);
          await stream.stop();
          await recorder.waitForAll(stream.committed, 120_000);
          await waitFor(async () => (await brokerState(gateway.url)).pendingEvents === 0, 30_000, 'an empty outbox');
          watch.stop();

          const counts = tally(stream.committed, recorder);
          reportFault('broker-down-30s', target.broker, counts, `committed while down ${whileDown}, circuit ${watch.circuits.join('→')}`);
          expect(counts.lostIds).toEqual([]);
          expect(stream.refused).toEqual([]);
          expect(stream.unanswered).toEqual([]);
          // The outage lasted at least DOWN_MS, and mutations went on meanwhile.
          expect(whileDown).toBeGreaterThanOrEqual((DOWN_MS / 1000) * PER_SECOND * 0.5);
          expect(watch.sawDisconnected).toBe(true);
          expect(watch.circuits[0]).toBe('CLOSED');
          expect(watch.circuits.at(-1)).toBe('CLOSED');
          expect(watch.circuits.length).toBeGreaterThanOrEqual(3);
          // It closed only once the broker could be back: never during the DOWN_MS it surely was not.
          expect(watch.changedAt.at(-1)!).toBeGreaterThanOrEqual(outageStart + DOWN_MS);
          expect((await gateway.terminate(20_000)).code).toBe(0);
        } finally {
          watch?.stop();
          await stream.stop();
          await scope.dispose();
        }
      },
      300_000,
    );
  }
});
