import { describe, it } from 'vitest';
import { waitFor } from '../helpers/events.js';
import { GatewayScope } from '../helpers/gateway-process.js';
import { requireBroker } from '../helpers/brokers.js';
import { createTestDatabase, POSTGRES_HOST, POSTGRES_PORT } from '../helpers/postgres.js';
import { eventInput, publishEvents } from '../helpers/publish-stream.js';
import { openSse } from '../helpers/subscriptions.js';
import { gatewayTargets } from '../targets/gateway-targets.js';

const postgres = await requireBroker('PostgreSQL', POSTGRES_HOST, POSTGRES_PORT);
const targets = postgres ? await gatewayTargets() : [];

const EVENTS = `subscription($t: String!) { events(topic: $t) { id cursor } }`;
type Frame = { id: string | null; event: { id: string; cursor: string | null } };

/** A GraphQL-over-SSE subscription read with fetch, keeping each event's `id:` line (its cursor). */
async function sse(url: string, topic: string, headers: Record<string, string> = {}) {
  const stream = await openSse(url, { query: EVENTS, variables: { t: topic } }, headers);
  const frames = (): Frame[] =>
    stream.frames.filter((f) => f.event === 'next').map((f) => ({ id: f.id, event: (JSON.parse(f.data) as { data: { events: Frame['event'] } }).data.events }));
  return { status: stream.status, frames, ids: () => frames().map((f) => f.event.id), close: stream.close };
}

async function publish(url: string, topic: string, n: number): Promise<string[]> {
  const inputs = Array.from({ length: n }, (_, i) => eventInput(topic, i));
  const refusal = await publishEvents(url, inputs);
  if (refusal) throw new Error(`publish refused: ${JSON.stringify(refusal)}`);
  return inputs.map((e) => e.id);
}

/**
 * No sticky sessions: a browser whose SSE stream to one gateway instance broke reconnects through
 * the load balancer to another, sending `Last-Event-ID` (its last cursor), and gets exactly what it
 * missed — events published through either instance meanwhile — then live events, whichever
 * instance takes the mutations. Two real gateway processes on one PostgreSQL database and one
 * broker; cursors are broker positions, so any instance on that broker reads them alike.
 */
describe('several instances: an SSE subscription resumes on another instance', () => {
  for (const target of targets) {
    // A broker of its own in each process (not persistent: the memory broker) has no log the
    // other instance could read; it refuses the cursor with CURSOR_EXPIRED (HTTP 410), never a gap.
    it.runIf(target.features.replay && target.features.sharedConsumers && target.features.persistent)(
      `[${target.broker}] resumes after Last-Event-ID on the other instance: nothing missed, nothing twice`,
      async ({ expect }) => {
        const database = await createTestDatabase();
        const scope = new GatewayScope();
        const topic = target.newTopic('resume');
        const env = { ...target.env, DATABASE_URL: database.url };
        const [a, b] = await Promise.all([0, 1].map(() => scope.start({ broker: target.broker, databasePath: scope.database(), env })));
        const streams: Awaited<ReturnType<typeof sse>>[] = [];
        try {
          const first = await sse(a!.url, topic);
          streams.push(first);
          expect(first.status).toBe(200);
          // The broker subscription goes live a moment after the response starts (a Kafka group
          // joins); publish one probe at a time until one arrives. Probes published before it was
          // live are never delivered on A.
          const probes: string[] = [];
          await waitFor(
            async () => {
              probes.push(...(await publish(a!.url, topic, 1)));
              await new Promise((r) => setTimeout(r, 300));
              return first.frames().length > 0;
            },
            30_000,
            'the first SSE event on instance A',
          );
          const published = await publish(a!.url, topic, 4);
          await waitFor(() => published.every((id) => first.ids().includes(id)), 15_000, 'every event on instance A');
          expect(first.frames().every((f) => f.id !== null && f.id === f.event.cursor)).toBe(true);
          // The client got up to here, then its connection broke: what it saw after this frame is
          // what a resume after its cursor must bring again.
          const resumeAt = first.frames().length - 3;
          const seenBefore = first.ids().slice(0, resumeAt + 1);
          const seenAfter = first.ids().slice(resumeAt + 1);
          const lastEventId = first.frames()[resumeAt]!.id!;
          await first.close();
          // Events published through both instances while it is away.
          const missed = [...(await publish(b!.url, topic, 3)), ...(await publish(a!.url, topic, 3))];

          const resumed = await sse(b!.url, topic, { 'last-event-id': lastEventId });
          streams.push(resumed);
          expect(resumed.status).toBe(200);
          const expected = [...seenAfter, ...missed];
          await waitFor(() => expected.every((id) => resumed.ids().includes(id)), 30_000, 'the missed events on instance B');
          // Then live events, published through the instance it left.
          const live = await publish(a!.url, topic, 3);
          await waitFor(() => live.every((id) => resumed.ids().includes(id)), 30_000, 'live events on instance B');
          await new Promise((r) => setTimeout(r, 500));
          const got = resumed.ids();
          expect(new Set(got).size).toBe(got.length);
          expect(got.filter((id) => seenBefore.includes(id))).toEqual([]);
          // Besides those, only a probe that A never delivered may come (on Kafka, a partition the
          // cursor does not name is read from its start).
          const unexpected = got.filter((id) => !expected.includes(id) && !live.includes(id));
          expect(unexpected.filter((id) => !probes.includes(id))).toEqual([]);
        } finally {
          for (const stream of streams) await stream.close();
          await scope.dispose();
          await database.drop();
        }
      },
      120_000,
    );
  }
});
