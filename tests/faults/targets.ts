import { afterAll } from 'vitest';
import type { BrokerFeatures } from '../../src/brokers/broker.js';
import { MemoryBroker } from '../../src/brokers/memory/memory-broker.js';
import { NatsBroker } from '../../src/brokers/nats/nats-broker.js';
import { silentLogger } from '../../src/util/logger.js';
import { requireBroker } from '../helpers/brokers.js';
import { uniqueName, waitFor } from '../helpers/events.js';
import { brokersScript, createKafkaBroker, KAFKA_HOST, KAFKA_PORT, plainKafka, restartKafka, withAdmin } from '../helpers/kafka.js';
import { NATS_STREAM, natsAnswers, natsOptions, plainClient as plainNats, restartNatsServer } from '../helpers/nats.js';
import { createRabbitMqBroker, deleteRabbitMqObjects, plainClient as plainRabbit, rabbitmqctl, restartRabbitMq } from '../helpers/rabbitmq.js';

/**
 * Counts, with the broker's own plain client, every copy of each event the broker took for one
 * topic: the evidence of how often the relays really published an event, below any consumer's
 * idempotency check or broker-side redelivery.
 */
export interface PublishTap {
  /** Call once the outbox is drained: copies per event id of everything the broker took. */
  collect(timeoutMs: number): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/**
 * One broker as the fault scenarios drive it. Scenarios branch on `features` and on which
 * controls a target offers (`restart`, `tap`), never on its name.
 */
export interface FaultTarget {
  /** The `BROKER` value; also the name in summary lines. */
  readonly broker: string;
  readonly features: BrokerFeatures;
  /** Environment every gateway process on this broker gets. */
  readonly env: Record<string, string>;
  /**
   * Stops the broker process, keeps it down `downMs`, starts it again and resolves once it serves;
   * starts it again even when stopping failed. Absent for a broker with no process of its own.
   */
  restart?(downMs: number): Promise<void>;
  /** A plain-client counter of published copies, live before this resolves. */
  tap?(topic: string): Promise<PublishTap>;
  /** A topic or consumer name of this file, deleted from the broker after the file's tests. */
  name(prefix: string, kind: 'topic' | 'consumer'): string;
}

type Names = { topics: Set<string>; consumers: Set<string> };

function namer(names: Names) {
  return (prefix: string, kind: 'topic' | 'consumer') => {
    const name = uniqueName(prefix);
    (kind === 'topic' ? names.topics : names.consumers).add(name);
    return name;
  };
}

/** What JetStream keeps of test events: six hours, as every test connection sets it. */
const NATS_TEST_MAX_AGE_MS = String(6 * 3600 * 1000);

function memoryTarget(): FaultTarget {
  return { broker: 'memory', features: new MemoryBroker().features, env: {}, name: namer({ topics: new Set(), consumers: new Set() }) };
}

function rabbitMqTarget(): FaultTarget {
  const names: Names = { topics: new Set(), consumers: new Set() };
  let restarted = false;
  afterAll(async () => {
    // Whatever happened to a restart (a timed-out test abandons it), leave RabbitMQ running.
    if (restarted) {
      await rabbitmqctl('start_app');
      await rabbitmqctl('await_startup');
    }
    await deleteRabbitMqObjects({ consumers: names.consumers });
  }, 180_000);
  return {
    broker: 'rabbitmq',
    features: createRabbitMqBroker().features,
    env: {},
    restart: (downMs) => {
      restarted = true;
      return restartRabbitMq(downMs);
    },
    name: namer(names),
    async tap(topic) {
      const client = await plainRabbit();
      await client.channel.assertExchange('events', 'topic', { durable: true });
      const { queue } = await client.channel.assertQueue('', { exclusive: true, autoDelete: true });
      await client.channel.bindQueue(queue, 'events', `${topic}.#`);
      return {
        async collect(timeoutMs) {
          // Confirmed persistent messages are in the queue: its depth is every copy published.
          const { messageCount } = await client.channel.checkQueue(queue);
          const copies = new Map<string, number>();
          let seen = 0;
          await client.channel.consume(queue, (message) => {
            if (!message) return;
            const id = String(message.properties.messageId);
            copies.set(id, (copies.get(id) ?? 0) + 1);
            seen++;
          }, { noAck: true });
          await waitFor(() => seen >= messageCount, timeoutMs, `${messageCount} copies from RabbitMQ`);
          return copies;
        },
        close: () => client.close(),
      };
    },
  };
}

function kafkaTarget(): FaultTarget {
  const names: Names = { topics: new Set(), consumers: new Set() };
  let restarted = false;
  afterAll(async () => {
    // Whatever happened to a restart (a timed-out test abandons it), leave Kafka running.
    if (restarted) await brokersScript('start-kafka');
    const consumers = [...names.consumers];
    const topics = [...names.topics, ...consumers.flatMap((c) => [`${c}.retry`, `${c}.dlq`])];
    await withAdmin(async (admin) => {
      const existing = new Set(await admin.listTopics());
      const doomed = topics.filter((t) => existing.has(t));
      if (doomed.length > 0) await admin.deleteTopics({ topics: doomed, timeout: 30_000 });
      await admin.deleteGroups(consumers).catch(() => undefined);
    }).catch((error: unknown) => process.stderr.write(`could not delete Kafka test topics: ${String(error)}\n`));
  }, 240_000);
  return {
    broker: 'kafka',
    features: createKafkaBroker().features,
    env: {},
    async restart(downMs) {
      restarted = true;
      await restartKafka(downMs);
    },
    name: namer(names),
    async tap(topic) {
      return {
        async collect(timeoutMs) {
          // The high watermarks say how many records Kafka holds; read them all from the start.
          const offsets = await withAdmin((admin) => admin.fetchTopicOffsets(topic));
          const total = offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
          const consumer = plainKafka().consumer({ groupId: uniqueName('tap'), maxWaitTimeInMs: 200, allowAutoTopicCreation: false });
          const copies = new Map<string, number>();
          let seen = 0;
          await consumer.connect();
          try {
            await consumer.subscribe({ topic, fromBeginning: true });
            await consumer.run({
              eachMessage: async ({ message }) => {
                const id = (JSON.parse(message.value!.toString()) as { id: string }).id;
                copies.set(id, (copies.get(id) ?? 0) + 1);
                seen++;
              },
            });
            await waitFor(() => seen >= total, timeoutMs, `${total} records from Kafka`);
          } finally {
            await consumer.disconnect();
          }
          return copies;
        },
        close: async () => undefined,
      };
    },
  };
}

function natsTarget(): FaultTarget {
  const names: Names = { topics: new Set(), consumers: new Set() };
  let restarted = false;
  afterAll(async () => {
    // Whatever happened to a restart (a timed-out test abandons it), leave nats-server running:
    // with nothing listening, the restart helper only starts it.
    if (restarted && !(await natsAnswers())) await restartNatsServer({ downMs: 0 });
    const { nc, jsm } = await plainNats();
    try {
      for (const name of names.consumers) {
        for (const durable of [name, `_replay_${name}`]) await jsm.consumers.delete(NATS_STREAM, durable).catch(() => undefined);
      }
    } finally {
      await nc.close();
    }
  }, 60_000);
  return {
    broker: 'nats',
    features: new NatsBroker(natsOptions(), silentLogger).features,
    env: { NATS_MAX_AGE_MS: NATS_TEST_MAX_AGE_MS },
    restart: (downMs) => {
      restarted = true;
      return restartNatsServer({ downMs });
    },
    name: namer(names),
    async tap(topic) {
      // A core subscription sees every PUB to the subject, including copies JetStream's duplicate
      // window then drops: it counts what the relays sent, not what the stream kept.
      const { nc } = await plainNats();
      const copies = new Map<string, number>();
      const subscription = nc.subscribe(`events.${topic}.>`, {
        callback: (error, message) => {
          if (error) return;
          const id = (message.json() as { id: string }).id;
          copies.set(id, (copies.get(id) ?? 0) + 1);
        },
      });
      await nc.flush();
      return {
        async collect() {
          // The server queued each copy to this connection before acknowledging it to the relay.
          await nc.flush();
          return copies;
        },
        async close() {
          subscription.unsubscribe();
          await nc.close();
        },
      };
    },
  };
}

/**
 * The brokers to run fault scenarios on: memory always, each live broker when it answers (on CI
 * an unreachable one fails the run, see `requireBroker`).
 */
export async function faultTargets(): Promise<FaultTarget[]> {
  const targets = [memoryTarget()];
  if (await requireBroker('RabbitMQ', '127.0.0.1', 5672)) targets.push(rabbitMqTarget());
  if (await requireBroker('Kafka', KAFKA_HOST, KAFKA_PORT)) targets.push(kafkaTarget());
  if (await requireBroker('NATS', '127.0.0.1', 4222)) targets.push(natsTarget());
  return targets;
}
