import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { GraphQLError } from 'graphql';
import { UnauthenticatedError, type Authenticator } from '../auth/authenticator.js';
import { credentialsFromHeaders } from '../auth/credentials.js';
import type { Principal } from '../auth/principal.js';
import type { Limits } from '../config/config.js';
import { gatewaySchema } from '../schema/index.js';
import type { GatewayContext, Services } from '../schema/context.js';
import type { Logger } from '../util/logger.js';
import { maskError } from './errors.js';
import { corsFor, useCrossSiteProtection, type OriginPolicy } from './use-cross-site-protection.js';
import { useGroupedSubscriptions } from './use-grouped-subscriptions.js';
import { useRequestBodyLimit } from './use-request-body-limit.js';
import type { SubscriptionGroups } from '../subscriptions/subscription-groups.js';

export type GatewayYoga = YogaServerInstance<Record<string, unknown>, GatewayContext>;

export interface YogaOptions {
  readonly services: Services;
  readonly logger: Logger;
  readonly authenticator: Authenticator;
  readonly limits: Limits;
  /** Serves `events` subscriptions, one execution per event for each group of subscribers. */
  readonly groups: SubscriptionGroups;
  /** Per-subscriber bounds for SSE streams. */
  readonly subscriberBounds: { readonly events: number; readonly bytes: number };
  /** Which web origins may call the gateway from a browser. */
  readonly origins: OriginPolicy;
  /** Plugins that run before the gateway's own, on every operation (`useOperationMetrics`). */
  readonly plugins?: readonly Plugin[];
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
  const { services, logger, authenticator, limits } = options;
  return createYoga<Record<string, unknown>, GatewayContext>({
    schema: gatewaySchema(),
    graphqlEndpoint: '/graphql',
    // `/health`, `/ready` and `/metrics` are answered before Yoga (operations-endpoints.ts).
    healthCheckEndpoint: '/health',
    landingPage: false,
    cors: corsFor(options.origins),
    context: async (initial) => ({
      services,
      // Over WebSocket the principal was established once, at connection_init.
      principal: (initial['principal'] as Principal | undefined) ?? (await authenticateRequest(authenticator, initial)),
      correlationId: headerFrom(initial, 'x-correlation-id'),
      traceparent: headerFrom(initial, 'traceparent'),
      tracestate: headerFrom(initial, 'tracestate'),
    }),
    // GraphiQL needs introspection. With auth on it subscribes over SSE, so the credentials in
    // its Headers tab reach subscriptions too (browser WebSockets cannot send headers).
    graphiql: limits.introspection
      ? { title: 'event-gateway', subscriptionsProtocol: authenticator.enabled ? 'SSE' : 'WS', defaultQuery: EXAMPLE_QUERY }
      : false,
    // Served from the package, not a CDN: GraphiQL works on hosts without internet access.
    renderGraphiQL,
    maskedErrors: { maskError },
    // Yoga's own limit pipes every body through a stream; `useRequestBodyLimit` counts only chunked ones.
    maxRequestBodySize: false,
    batching: limits.batchLimit > 0 ? { limit: limits.batchLimit } : false,
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error({ err: args.find((a) => a instanceof Error) }, args.map(String).join(' ')),
    },
    plugins: [
      ...(options.plugins ?? []),
      useCrossSiteProtection(options.origins),
      useRequestBodyLimit(limits.maxRequestBytes),
      ...(limits.introspection ? [] : [useDisableIntrospection()]),
      useQueryLimits(limits),
      useGraphQLErrorCodes(),
      useGroupedSubscriptions({ groups: options.groups, bounds: options.subscriberBounds }),
    ],
  });
}

/**
 * GraphQL Armor's depth, cost, alias, directive and token limits, each rejection with its own
 * `extensions.code`. Field suggestions ("did you mean …") are blocked where introspection is off,
 * since they would leak the schema the same way.
 */
function useQueryLimits(limits: Limits): Plugin {
  const coded = (code: string) => ({
    onReject: [(_ctx: unknown, error: GraphQLError) => void ((error.extensions as Record<string, unknown>)['code'] = code)],
  });
  return EnvelopArmorPlugin({
    maxDepth: { n: limits.maxDepth, ...coded('QUERY_TOO_DEEP') },
    costLimit: { maxCost: limits.maxCost, ...coded('QUERY_TOO_COSTLY') },
    maxAliases: { n: limits.maxAliases, ...coded('TOO_MANY_ALIASES') },
    maxDirectives: { n: limits.maxDirectives, ...coded('TOO_MANY_DIRECTIVES') },
    maxTokens: { n: limits.maxTokens, ...coded('TOO_MANY_TOKENS') },
    blockFieldSuggestion: { enabled: !limits.introspection },
  }) as Plugin;
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
    onValidate:
      () =>
      ({ result }) => {
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

/** Credentials that do not verify refuse the whole request with 401, before anything runs. */
async function authenticateRequest(authenticator: Authenticator, initial: Record<string, unknown>): Promise<Principal> {
  const request = initial['request'] as Request | undefined;
  try {
    return await authenticator.authenticate(credentialsFromHeaders((name) => request?.headers?.get?.(name)));
  } catch (error) {
    if (!(error instanceof UnauthenticatedError)) throw error;
    throw new GraphQLError(error.message, { originalError: error, extensions: { code: error.code, http: { status: 401 } } });
  }
}

/**
 * A request header (`x-correlation-id`, `traceparent`, `tracestate`) from the HTTP request, or
 * from the WebSocket upgrade request (see `KEPT_HEADERS` in websocket.ts).
 */
function headerFrom(initial: Record<string, unknown>, name: string): string | null {
  const request = initial['request'] as Request | undefined;
  const fromFetch = request?.headers?.get?.(name);
  if (fromFetch) return fromFetch;
  const req = initial['req'] as { headers?: Record<string, string | string[] | undefined> } | undefined;
  const fromNode = req?.headers?.[name];
  return (Array.isArray(fromNode) ? fromNode[0] : fromNode) ?? null;
}
