import type { Principal } from '../auth/principal.js';
import type { Broker } from '../brokers/broker.js';
import type { ConsumerManager } from '../consumers/consumer-manager.js';
import type { EventPublisher } from '../events/publisher.js';
import type { Relay } from '../relay/relay.js';
import type { DeadLetterRepository, DeadLetterRow } from '../store/dead-letter-repository.js';
import type { OutboxRepository } from '../store/outbox-repository.js';
import type { ProcessedMessageRepository } from '../store/processed-message-repository.js';
import type { SubscriptionGroups } from '../subscriptions/subscription-groups.js';
import type { SubscriptionHub } from '../subscriptions/subscription-hub.js';
import type { EventBus } from '../util/event-bus.js';

/** What resolvers use; built once by `buildApp`. */
export interface Services {
  readonly publisher: EventPublisher;
  readonly outbox: OutboxRepository;
  readonly deadLetters: DeadLetterRepository;
  readonly processed: ProcessedMessageRepository;
  readonly consumers: ConsumerManager;
  readonly hub: SubscriptionHub;
  /** `events` subscribers grouped by operation (one execution per event per group). */
  readonly groups: SubscriptionGroups;
  readonly broker: Broker;
  readonly relay: Relay;
  /** Announces each new dead letter to `deadLettered` subscribers in this process. */
  readonly deadLetterBus: EventBus<DeadLetterRow>;
}

/** Set in the context of every operation that arrived over WebSocket (graphql-ws). */
export const OVER_WEBSOCKET = Symbol('over graphql-ws');

export interface GatewayContext {
  readonly services: Services;
  /** Who is calling; `OPEN_PRINCIPAL` (everything allowed) when auth is not configured. */
  readonly principal: Principal;
  /** From the `x-correlation-id` request header, when the client sent one. */
  readonly correlationId: string | null;
  /** The W3C `traceparent` and `tracestate` request headers as sent (checked where they are used). */
  readonly traceparent: string | null;
  readonly tracestate: string | null;
}
