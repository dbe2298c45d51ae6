import { describe, it } from 'vitest';
import { waitFor } from '../helpers/events.js';
import { reportFault, tally } from './fault-tally.js';
import { GatewayScope } from '../helpers/gateway-process.js';
import { brokerState, deadLetterCount, PublishStream } from '../helpers/publish-stream.js';
import { gatewayTargets } from '../targets/gateway-targets.js';

const targets = await gatewayTargets();

const PER_SECOND = 30;
/** Each webhook call takes this long, so the consumer always has a batch in flight. */
const HANDLER_MS = 150;
const MAX_ATTEMPTS = 3;

/** About one event in five fails its first call, so retries are on their way during the restart. */
const failsFirstCall = (id: string) => parseInt(id.slice(0, 2), 16) % 5 === 0;

/**
 * Scenario 3: the broker restarts while a durable consumer is mid-batch (slow webhook calls in
 * flight, retries pending). No committed event is lost, and none is dead-lettered: a restart is
 * not a failed attempt. Each test restarts a different broker, so they run side by side.
 */
describe.concurrent('fault: broker restart while a consumer is mid-batch', () => {
  for (const target of targets) {
    it.runIf(target.restart !== undefined && target.features.persistent && target.features.durableConsumers)(
      `[${target.broker}] nothing lost, nothing dead-lettered`,
      async ({ expect }) => {
        const scope = new GatewayScope();
        const topic = target.newTopic('midbatch');
        const consumer = target.newConsumer('midbatch');
        const recorder = await scope.recorder();
        recorder.answer = (id, call) => (call === 1 && failsFirstCall(id) ? { status: 503 } : { delayMs: HANDLER_MS });
        const gateway = await scope.start({
          broker: target.broker,
          databasePath: scope.database(),
          consumers: [
            {
              name: consumer,
              topic,
              prefetch: 10,
              maxAttempts: MAX_ATTEMPTS,
              webhook: { url: recorder.url },
              backoff: { initialMs: 300, maxMs: 2000, multiplier: 2, jitter: 0.2 },
            },
          ],
          env: target.env,
        });
        const stream = new PublishStream({ target: () => gateway.url, topic, count: 3000, perSecond: PER_SECOND });
        try {
          await waitFor(() => recorder.accepted.size >= PER_SECOND && recorder.refused.size > 0, 60_000, 'the stream to reach the webhook, retries included');
          await waitFor(() => recorder.inFlight >= 3, 10_000, 'webhook calls in flight');
          const inFlight = recorder.inFlight;
          await target.restart!({ downMs: 2000 });
          await stream.waitForCommitted(stream.committed.length + PER_SECOND, 30_000);
          await stream.stop();
          // JetStream hands back a delivery whose ack the restart lost after its ack wait (30 s).
          await recorder.waitForAll(stream.committed, 120_000);
          await waitFor(async () => (await brokerState(gateway.url)).pendingEvents === 0, 30_000, 'an empty outbox');

          const counts = tally(stream.committed, recorder);
          const deadLettered = await deadLetterCount(gateway.url, consumer);
          const retried = [...recorder.refused.keys()].length;
          reportFault(
            'broker-restart-mid-batch',
            target.broker,
            counts,
            `webhook calls in flight at restart ${inFlight}, events failed once ${retried}, dead-lettered ${deadLettered}`,
          );
          expect(counts.lostIds).toEqual([]);
          expect(deadLettered).toBe(0);
          expect(stream.refused).toEqual([]);
          expect(stream.unanswered).toEqual([]);
          expect((await gateway.terminate(20_000)).code).toBe(0);
        } finally {
          await stream.stop();
          await scope.dispose();
        }
      },
      300_000,
    );
  }
});
