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
  /** How long real operations may take here (consumer-group joins are slow on Kafka). */
  readonly timeoutMs?: number;
}
