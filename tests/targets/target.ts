import type { Broker, BrokerFeatures, ConsumerBinding } from '../../src/brokers/broker.js';
import type { GatewayEvent } from '../../src/events/event.js';
import { uniqueName } from '../helpers/events.js';

/**
 * One broker as the live tests drive it: the conformance suite (in-process connections) and the
 * fault scenarios (real gateway processes). Tests branch only on `features` and on which optional
 * controls a target offers, never on its name.
 *
 * A target belongs to the test file that made it (`memoryTarget()`, `kafkaTarget()`, … in this
 * folder): after that file's tests it deletes from the broker what the file created, and leaves a
 * broker that a timed-out test abandoned mid-restart running again.
 */
export interface BrokerTarget {
  /** The name in the conformance suite's titles. */
  readonly name: string;
  /** The `BROKER` value of a gateway process on this target; also the name in fault summary lines. */
  readonly broker: string;
  readonly features: BrokerFeatures;
  /** The environment (besides `BROKER`) with which a gateway process reaches this broker. */
  readonly env: Readonly<Record<string, string>>;
  /** A new connection, as one gateway process would open it. */
  create(): Broker;
  /**
   * Stops the real broker process, keeps it down `downMs`, starts it again and resolves once it
   * serves; starts it again even when stopping failed. Absent for a broker with no process of its own.
   */
  restart?(options: { downMs: number }): Promise<void>;
  /** Checks that the broker answers (starting it, where the target owns it); the suite fails, never skips, when it does not. */
  ensureUp?(): Promise<void>;
  /**
   * Puts a message on the broker as another application's plain client would: `body` as it is,
   * `headers` as the message's native headers, where the gateway reads events of `topic` and
   * `type`; resolves once the broker took it. (The memory broker has no wire: it decodes the body
   * as an adapter would.)
   */
  publishForeign?(message: ForeignMessage): Promise<void>;
  /** A plain-client counter of the copies the broker took for `topic`, live before this resolves. */
  tap?(topic: string): Promise<PublishTap>;
  /** A new topic name, deleted from the broker (where it keeps topics) after the file's tests. */
  newTopic(prefix: string): string;
  /** A new durable consumer name, deleted from the broker with everything it made after the file's tests. */
  newConsumer(prefix: string): string;
  /** How long real operations may take here (consumer-group joins are slow on Kafka). */
  readonly timeoutMs?: number;
}

/** A message another application's producer writes straight to the broker. */
export interface ForeignMessage {
  readonly topic: string;
  readonly type: string;
  /** The message body, a structured CloudEvent. */
  readonly body: string;
  /** Native message headers (Kafka record headers, AMQP headers, NATS headers). */
  readonly headers: Readonly<Record<string, string>>;
  /** The record key, where the broker has one. */
  readonly key?: string;
}

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
 * The topics and durable consumers a test file used on one broker: the names it took, and what
 * connections wrapped by `watch` published to, subscribed to or consumed. A target deletes them
 * from its broker after the file's tests, whether they were made in this process or by a gateway
 * process.
 */
export class CreatedNames {
  readonly topics = new Set<string>();
  readonly consumers = new Set<string>();

  readonly newTopic = (prefix: string): string => add(this.topics, uniqueName(prefix));
  readonly newConsumer = (prefix: string): string => add(this.consumers, uniqueName(prefix));

  /** `broker` with every call passed through, noting the topics and consumers the calls use. */
  watch<B extends Broker>(broker: B): B {
    const note = (method: keyof Broker, args: unknown[]) => {
      if (method === 'publish') for (const event of args[0] as GatewayEvent[]) this.topics.add(event.topic);
      if (method === 'subscribe') this.topics.add(args[0] as string);
      if (method === 'consume' || method === 'redeliver') {
        const binding = args[0] as ConsumerBinding;
        this.topics.add(binding.topic);
        this.consumers.add(binding.name);
      }
    };
    // A Proxy (not a subclass) so that one recorder serves every adapter, private state included.
    return new Proxy(broker, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          note(property as keyof Broker, args);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  }
}

function add(names: Set<string>, name: string): string {
  names.add(name);
  return name;
}
