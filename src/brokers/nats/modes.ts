import { jetstreamManager } from '@nats-io/jetstream';
import { errors as natsErrors, type NatsConnection } from '@nats-io/transport-node';
import { BrokerCapabilityError, BrokerUnavailableError, errorMessage } from '../../errors.js';
import { encodeEvent } from '../../events/codec.js';
import type { GatewayEvent } from '../../events/event.js';
import type { BrokerFeatures, ConsumerBinding, ConsumerHandle, DeliverySink, FanOutOptions, Subscription } from '../broker.js';
import type { NatsDeps, NatsSession } from './connection.js';
import { ensureBindingConsumer } from './consumer-config.js';
import { CoreConsumer } from './core-consumer.js';
import { OrderedFanOut, subscribeCore, type OnEvent } from './fan-out.js';
import { JetStreamConsumer } from './jetstream-consumer.js';
import { eventHeaders } from './messages.js';
import { redactUrl } from '../redact-url.js';
import { publishToCore, publishToJetStream } from './publish.js';
import { ensureStream, warnAboutTopicTtls } from './stream.js';
import { replaySubject } from './subjects.js';

/** What differs between JetStream and core NATS; `NatsBroker` owns the lifecycle around it. */
export interface NatsMode {
  readonly features: BrokerFeatures;
  /** Checks the server can serve this mode and sets it up; see `PrepareSession`. */
  prepare(nc: NatsConnection): Promise<NatsSession>;
  publish(session: NatsSession, events: readonly GatewayEvent[]): Promise<void>;
  subscribe(topic: string, onEvent: OnEvent, options: FanOutOptions): Promise<Subscription>;
  consume(binding: ConsumerBinding, sink: DeliverySink): Promise<ConsumerHandle>;
  redeliver(session: NatsSession, binding: ConsumerBinding, event: GatewayEvent): Promise<void>;
}

function jetStreamRequiredMessage(url: string): string {
  return (
    `NATS at ${url} has no JetStream. JetStream is required for durable consumers and confirmed publishing: ` +
    'start nats-server with JetStream enabled (-js, or a jetstream {} block in its configuration), ' +
    'or set NATS_JETSTREAM=off to run on core NATS with at-most-once delivery.'
  );
}

/** JetStream: one stream, durable pull consumers, PubAcks, ordered-consumer fan-out. */
export class JetStreamMode implements NatsMode {
  readonly features: BrokerFeatures = {
    persistent: true,
    sharedConsumers: true,
    // One stream, and each consumer delivers in stream order; the pipeline keeps per-key order.
    orderedByKey: true,
    publishDeduplication: true,
    lag: true,
    durableConsumers: true,
    // Fan-out positions are stream sequences; the stream keeps events for NATS_MAX_AGE_MS.
    replay: true,
  };

  constructor(private readonly deps: NatsDeps) {
    warnAboutTopicTtls(deps.options, deps.logger);
  }

  async prepare(nc: NatsConnection): Promise<NatsSession> {
    const message = jetStreamRequiredMessage(redactUrl(this.deps.options.url, 'NATS_URL'));
    if (nc.info?.jetstream !== true) throw new BrokerCapabilityError(message);
    const jsm = await jetstreamManager(nc).catch((error: unknown) => {
      // JetStream enabled on the server but not for this account.
      throw (error as Error).name === 'JetStreamNotEnabled' ? new BrokerCapabilityError(message, { cause: error }) : error;
    });
    await ensureStream(jsm, this.deps.options);
    return { nc, js: jsm.jetstream(), jsm };
  }

  publish(session: NatsSession, events: readonly GatewayEvent[]): Promise<void> {
    const { options, logger } = this.deps;
    return publishToJetStream(session.js!, events, { timeoutMs: options.publishTimeoutMs, stream: options.stream, logger });
  }

  async subscribe(topic: string, onEvent: OnEvent, options: FanOutOptions): Promise<Subscription> {
    const fanOut = new OrderedFanOut(this.deps, topic, onEvent, options.after);
    await fanOut.open();
    return fanOut;
  }

  async consume(binding: ConsumerBinding, sink: DeliverySink): Promise<ConsumerHandle> {
    const consumer = new JetStreamConsumer(this.deps, binding, sink);
    await consumer.start();
    return consumer;
  }

  /**
   * Publishes to `events._replay.<consumer>`, read only by that consumer's companion, so no other
   * consumer or subscription sees it; without `Nats-Msg-Id`, so the duplicate window that holds
   * the original publish cannot drop it. The companion's first delivery is attempt 1.
   */
  async redeliver(session: NatsSession, binding: ConsumerBinding, event: GatewayEvent): Promise<void> {
    const { options } = this.deps;
    const subject = replaySubject(binding.name);
    try {
      await ensureBindingConsumer(session, binding, options, true);
      const headers = eventHeaders(event, { dedupe: false });
      await session.js!.publish(subject, encodeEvent(event), { headers, timeout: options.publishTimeoutMs });
    } catch (error) {
      const message = `replay of event ${event.id} to consumer ${binding.name} (${subject}) was not confirmed: ${errorMessage(error)}`;
      throw new BrokerUnavailableError(message, { cause: error });
    }
  }
}

/** Core NATS: subscriptions and queue groups, at most once; nothing is stored. */
export class CoreMode implements NatsMode {
  readonly features: BrokerFeatures = {
    persistent: false,
    sharedConsumers: true,
    orderedByKey: true,
    publishDeduplication: false,
    lag: false,
    durableConsumers: false,
    replay: false,
  };

  constructor(private readonly deps: NatsDeps) {}

  async prepare(nc: NatsConnection): Promise<NatsSession> {
    return { nc };
  }

  publish(session: NatsSession, events: readonly GatewayEvent[]): Promise<void> {
    return publishToCore(session.nc, events, { timeoutMs: this.deps.options.publishTimeoutMs });
  }

  subscribe(topic: string, onEvent: OnEvent, options: FanOutOptions): Promise<Subscription> {
    return subscribeCore(this.deps, topic, onEvent, options);
  }

  async consume(binding: ConsumerBinding, sink: DeliverySink): Promise<ConsumerHandle> {
    const consumer = new CoreConsumer(this.deps, binding, sink);
    await consumer.start();
    return consumer;
  }

  /** A request to the consumer's queue group, answered by the process that took it; nobody attached means no replay. */
  async redeliver(session: NatsSession, binding: ConsumerBinding, event: GatewayEvent): Promise<void> {
    const subject = replaySubject(binding.name);
    try {
      const headers = eventHeaders(event, { dedupe: false });
      await session.nc.request(subject, encodeEvent(event), { headers, timeout: this.deps.options.publishTimeoutMs });
    } catch (error) {
      const reason =
        error instanceof natsErrors.NoRespondersError || (error as Error).cause instanceof natsErrors.NoRespondersError
          ? `no process runs consumer ${binding.name} now, and core NATS keeps nothing for it`
          : errorMessage(error);
      throw new BrokerUnavailableError(`replay of event ${event.id} to consumer ${binding.name} was not taken: ${reason}`, {
        cause: error,
      });
    }
  }
}
