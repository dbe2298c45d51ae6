import { describe, it } from 'vitest';
import { waitFor } from '../helpers/events.js';
import { reportFault, tally } from './fault-tally.js';
import { type GatewayProcess, GatewayScope } from '../helpers/gateway-process.js';
import { brokerState, eventInput, publishEvents, PublishStream } from '../helpers/publish-stream.js';
import { gatewayTargets } from '../targets/gateway-targets.js';

const targets = await gatewayTargets();

/** Both relays look for rows every 20 ms in batches of 16, so they compete for the same rows. */
const RACING_RELAYS = { RELAY_POLL_INTERVAL_MS: '20', RELAY_BATCH_SIZE: '16' };

/**
 * Scenario 4: two gateway processes on one SQLite outbox (WAL), each taking half of the mutations
 * and both relaying: no row is published twice, because a relay publishes only rows it claimed.
 *
 * The evidence is what the broker took. Where the broker runs on its own, a plain client counts
 * every copy of each event (below any consumer's idempotency check), while both gateways share
 * one durable consumer. The memory broker lives inside each process and sees only its own relay's
 * publishes: there each process runs a consumer of its own name with its own webhook, so a webhook
 * call is one publish by that process's relay, and no shared idempotency record can hide a second.
 */
describe('fault: two gateway processes relaying from one outbox', () => {
  for (const target of targets) {
    it(`[${target.broker}] no row is published twice`, async ({ expect }) => {
      const scope = new GatewayScope();
      const databasePath = scope.database();
      const topic = target.newTopic('tworelays');
      const shared = target.newConsumer('tworelays');
      const tap = await target.tap?.(topic);
      const recorders = [await scope.recorder(), await scope.recorder()];
      const consumerOf = (i: number) => ({
        name: tap ? shared : target.newConsumer(`tworelays${i}`),
        topic,
        prefetch: 20,
        webhook: { url: recorders[tap ? 0 : i]!.url },
      });
      const gateways: GatewayProcess[] = [];
      for (const i of [0, 1]) {
        gateways.push(await scope.start({ broker: target.broker, databasePath, consumers: [consumerOf(i)], env: { ...target.env, ...RACING_RELAYS } }));
      }
      let turn = 0;
      const stream = new PublishStream({ target: () => gateways[turn++ % 2]!.url, topic, count: 400, perSecond: 50 });
      try {
        // Bursts, to each process in turn, leave backlogs that both relays reach for.
        const bursts = Array.from({ length: 6 }, (_, b) => Array.from({ length: 60 }, (_, i) => eventInput(topic, 100_000 + b * 100 + i)));
        for (const [b, burst] of bursts.entries()) {
          await new Promise((r) => setTimeout(r, 1000));
          expect(await publishEvents(gateways[b % 2]!.url, burst)).toBeNull();
        }
        await stream.done;
        expect(stream.refused).toEqual([]);
        const committed = [...stream.committed, ...bursts.flat().map((e) => e.id)];
        await waitFor(() => tally(committed, ...recorders).lost === 0, 60_000, 'every committed event at a webhook');
        for (const gateway of gateways) await waitFor(async () => (await brokerState(gateway.url)).pendingEvents === 0, 30_000, 'an empty outbox');

        let copies: Map<string, number>;
        if (tap) {
          copies = await tap.collect(60_000);
        } else {
          copies = new Map();
          for (const recorder of recorders) for (const [id, n] of recorder.accepted) copies.set(id, (copies.get(id) ?? 0) + n);
          // Both relays published: each process's consumer got events only its own relay sent.
          expect(recorders.map((r) => r.accepted.size > 0)).toEqual([true, true]);
        }
        const twice = [...copies].filter(([, n]) => n > 1).map(([id]) => id);
        const counts = tally(committed, ...recorders);
        reportFault(
          'two-relays',
          target.broker,
          counts,
          `copies ${tap ? 'at the broker' : 'published'} ${[...copies.values()].reduce((a, b) => a + b, 0)}, published twice ${twice.length}`,
        );
        expect(counts.lostIds).toEqual([]);
        expect(committed.filter((id) => !copies.has(id))).toEqual([]);
        expect(twice).toEqual([]);
        for (const gateway of gateways) expect((await gateway.terminate(20_000)).code).toBe(0);
      } finally {
        await stream.stop();
        await tap?.close();
        await scope.dispose();
      }
    }, 180_000);
  }
});
