import type { ConsumerConfig } from '../../../src/config/config.js';
import { gql } from '../../helpers/app.js';
import { subscribe, wsClient, type LiveSubscription } from '../../helpers/subscriptions.js';
import type { ScenarioContext, TestApp } from '../scenario.js';

/** What the trace and CloudEvents scenarios read of an event through the GraphQL API. */
export interface EventView {
  readonly id: string;
  readonly topic: string;
  readonly type: string;
  readonly dataSchema: string | null;
  readonly extensions: Record<string, unknown> | null;
  readonly trace: { readonly traceId: string; readonly spanId: string; readonly traceparent: string; readonly tracestate: string | null } | null;
}

export const EVENT_FIELDS = 'id topic type dataSchema extensions trace { traceId spanId traceparent tracestate }';

/** A real graphql-ws subscriber of `topic` on the gateway, closed after the scenario. */
export function subscribeToEvents(app: TestApp, topic: string, context: Pick<ScenarioContext, 'defer'>): LiveSubscription<{ events: EventView }> {
  const client = wsClient(app.url);
  const subscription = subscribe<{ events: EventView }>(client, `subscription($topic: String!) { events(topic: $topic) { ${EVENT_FIELDS} } }`, { topic });
  context.defer(async () => {
    subscription.close();
    await client.dispose();
  });
  return subscription;
}

/** `publishEvent` over HTTP with the given request headers; the event as the mutation answered it. */
export async function publishEvent(app: TestApp, input: Record<string, unknown>, headers: Record<string, string> = {}): Promise<EventView> {
  const result = await gql<{ publishEvent: { event: EventView } }>(
    app.url,
    `mutation($input: PublishEventInput!) { publishEvent(input: $input) { event { ${EVENT_FIELDS} } } }`,
    { input },
    headers,
  );
  if (result.errors) throw new Error(JSON.stringify(result.errors));
  return result.data!.publishEvent.event;
}

/** A webhook consumer of `topic` calling `url`. */
export function webhookConsumer(name: string, topic: string, url: string, overrides: Partial<ConsumerConfig> = {}): Partial<ConsumerConfig> {
  return { name, topic, webhook: { url, timeoutMs: 5000, headers: {} }, ...overrides };
}
