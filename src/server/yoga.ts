import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga, useReadinessCheck, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { GraphQLError } from 'graphql';
import { gatewaySchema } from '../schema/index.js';
import type { GatewayContext, Services } from '../schema/context.js';
import type { Logger } from '../util/logger.js';
import { maskError } from './errors.js';

export type GatewayYoga = YogaServerInstance<Record<string, unknown>, GatewayContext>;

export interface YogaOptions {
  readonly services: Services;
  readonly logger: Logger;
  /** Readiness: the store answers and the broker is connected. */
  readonly ready: () => boolean;
}

const EXAMPLE_QUERY = /* GraphQL */ `# Publish an event (it goes to the outbox, then the relay sends it to the broker):
mutation Publish {
  publishEvent(input: { topic: "orders", type: "order.created", key: "order-1", data: { orderId: 1, total: 42 } }) {
    outboxId
    duplicate
    event { id time correlationId }
  }
}

# In another tab, watch the topic live:
# subscription { events(topic: "orders") { id type data time } }

query Operations {
  outbox(first: 10) { edges { node { id status attempts lastError event { type key } } } }
  consumers { name topic processed retrying deadLettered lag }
  brokers { kind connected circuit pendingEvents lastError }
}
`;

export function createGatewayYoga(options: YogaOptions): GatewayYoga {
  const { services, logger } = options;
  return createYoga<Record<string, unknown>, GatewayContext>({
    schema: gatewaySchema(),
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/health',
    landingPage: false,
    context: (initial) => ({ services, correlationId: correlationIdFrom(initial) }),
    graphiql: { title: 'event-gateway', subscriptionsProtocol: 'WS', defaultQuery: EXAMPLE_QUERY },
    // Served from the package, not a CDN: GraphiQL works on hosts without internet access.
    renderGraphiQL,
    maskedErrors: { maskError },
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error({ err: args.find((a) => a instanceof Error) }, args.map(String).join(' ')),
    },
    plugins: [useReadinessCheck({ endpoint: '/ready', check: () => options.ready() }), useGraphQLErrorCodes()],
  });
}

/**
 * GraphQL's own request errors (syntax, unknown fields, bad variables) carry no code by default;
 * give them one so clients can branch on `extensions.code` for every error.
 */
function useGraphQLErrorCodes(): Plugin {
  const withCode = (errors: readonly (Error | GraphQLError)[], code: string) => {
    for (const error of errors) {
      const extensions = (error as Partial<GraphQLError>).extensions as Record<string, unknown> | undefined;
      if (extensions && !extensions['code']) extensions['code'] = code;
    }
  };
  return {
    onValidate: () => ({ result }) => {
      if (result.length > 0) withCode(result, 'GRAPHQL_VALIDATION_FAILED');
    },
    onExecute: () => ({
      onExecuteDone: ({ result }) => {
        // No `data` at all means the request was refused before any resolver ran: bad variables.
        if ('errors' in result && result.errors && result.data === undefined) withCode(result.errors, 'BAD_USER_INPUT');
      },
    }),
  };
}

/** `x-correlation-id` from the HTTP request, or from the WebSocket upgrade request. */
function correlationIdFrom(initial: Record<string, unknown>): string | null {
  const request = initial['request'] as Request | undefined;
  const fromFetch = request?.headers?.get?.('x-correlation-id');
  if (fromFetch) return fromFetch;
  const req = initial['req'] as { headers?: Record<string, string | string[] | undefined> } | undefined;
  const fromNode = req?.headers?.['x-correlation-id'];
  return (Array.isArray(fromNode) ? fromNode[0] : fromNode) ?? null;
}
