import { GraphQLError } from 'graphql';
import { maskError as yogaMaskError, type YogaServerOptions } from 'graphql-yoga';
import { GatewayError } from '../errors.js';
import type { Logger } from '../util/logger.js';

type MaskError = NonNullable<Exclude<YogaServerOptions<object, object>['maskedErrors'], boolean | undefined>>['maskError'];

/**
 * Expected failures (`GatewayError` with `expose`) reach the client with their message and
 * `extensions.code`; GraphQL's own errors (syntax, validation, variable coercion) get a code;
 * everything else is masked by Yoga as an internal error.
 */
export const maskError: NonNullable<MaskError> = (error, message, isDev) => {
  const graphqlError = error instanceof GraphQLError ? error : undefined;
  const original = graphqlError?.originalError ?? error;
  const gatewayError = findGatewayError(original);
  if (gatewayError?.expose) {
    // Returning the same error tells Yoga it is expected: no error log for a client's mistake.
    if (graphqlError && graphqlError.message === gatewayError.message) {
      Object.assign(graphqlError.extensions as Record<string, unknown>, gatewayError.details, { code: gatewayError.code });
      return graphqlError;
    }
    return new GraphQLError(gatewayError.message, {
      nodes: graphqlError?.nodes,
      path: graphqlError?.path,
      originalError: gatewayError,
      extensions: { ...gatewayError.details, code: gatewayError.code },
    });
  }
  if (graphqlError && (!graphqlError.originalError || graphqlError.originalError instanceof GraphQLError)) {
    return graphqlError;
  }
  return yogaMaskError(error, message, isDev);
};

function findGatewayError(error: unknown): GatewayError | undefined {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof GatewayError) return e;
  }
  return undefined;
}

/** Yoga's message for a masked error (`maskedErrors.errorMessage`, not set here). */
const MASKED_MESSAGE = 'Unexpected error.';

/**
 * An error on its way to a client, masked as Yoga masks it (`maskError` above), for what is served
 * outside Yoga's hooks (grouped subscriptions over WebSocket). One that had to be masked is logged,
 * as Yoga logs it.
 */
export function maskForClient(error: GraphQLError, logger: Logger): GraphQLError {
  const masked = maskError(error, MASKED_MESSAGE) as GraphQLError;
  if (masked !== error) logger.error({ err: error }, 'unexpected error in a subscription; the client sees it masked');
  return masked;
}
