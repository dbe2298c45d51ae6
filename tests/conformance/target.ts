import type { Broker, BrokerFeatures } from '../../src/brokers/broker.js';

/**
 * One broker the conformance suite runs against. The suite branches only on `features` and on
 * which optional controls a target offers, never on its name.
 */
export interface BrokerTarget {
  readonly name: string;
  readonly features: BrokerFeatures;
  /** A new connection, as one gateway process would open it. */
  create(): Broker;
  /**
   * Stops the real broker process and starts it again; resolves once it serves again.
   * Absent for a broker with no process of its own.
   */
  restart?(options: { downMs: number }): Promise<void>;
  /** Checks that the broker answers; the suite fails (never skips) when it does not. */
  ensureUp?(): Promise<void>;
  /**
   * Puts a message on the broker as another application's plain client would: `body` as it is,
   * `headers` as the message's native headers, where the gateway reads events of `topic` and
   * `type`; resolves once the broker took it. (The memory broker has no wire: it decodes the body
   * as an adapter would.)
   */
  publishForeign?(message: ForeignMessage): Promise<void>;
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
