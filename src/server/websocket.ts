import type { Server } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { SubscriberOverflowError } from '../subscriptions/subscription-hub.js';
import type { Authenticator } from '../auth/authenticator.js';
import { credentialsFromConnectionParams } from '../auth/credentials.js';
import type { Principal } from '../auth/principal.js';
import type { Limits } from '../config/config.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../util/logger.js';
import type { GatewayYoga } from './yoga.js';

/** Close code for a client that stopped reading (RFC 6455 1008: policy violation). */
export const TOO_SLOW_CLOSE_CODE = 1008;
/** After asking a stalled client to close, how long before its connection is cut anyway. */
const STALLED_CLOSE_GRACE_MS = 10_000;

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

type SocketExtra = {
  principal?: Principal;
  expiry?: NodeJS.Timeout;
};

export interface WebSocketOptions {
  readonly yoga: GatewayYoga;
  readonly authenticator: Authenticator;
  readonly limits: Limits;
  readonly logger: Logger;
}

/**
 * graphql-ws (the `graphql-transport-ws` protocol) on the same HTTP server and path as Yoga.
 * Every operation runs through Yoga's envelop, so plugins, limits, masking and context are the
 * same as over HTTP. Credentials are checked once, in `connection_init`; the protocol's own
 * rules close a socket that does not init in time (4408), inits twice (4429) or reuses an
 * operation id (4409); `ws` closes one that sends a message over `maxPayload` (1009).
 */
export function attachWebSocket(server: Server, options: WebSocketOptions) {
  const { yoga, authenticator, limits, logger } = options;
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: limits.wsMaxPayloadBytes });

  const disposable = useServer<Record<string, unknown> | undefined, SocketExtra>(
    {
      connectionInitWaitTimeout: limits.wsInitTimeoutMs,
      onConnect: async (ctx) => {
        const { socket } = ctx.extra;
        let principal: Principal;
        try {
          principal = await authenticator.authenticate(credentialsFromConnectionParams(ctx.connectionParams));
        } catch (error) {
          socket.close(CloseCode.Forbidden, `Forbidden: ${errorMessage(error)}`);
          return false;
        }
        if (authenticator.enabled && principal.kind === 'anonymous') {
          socket.close(CloseCode.Forbidden, 'Forbidden: send an API key or a bearer token in connection_init');
          return false;
        }
        ctx.extra.principal = principal;
        if (principal.expiresAt !== undefined) {
          // A socket outlives no token: it closes when the credential it was opened with expires.
          const expiry = setTimeout(() => socket.close(CloseCode.Forbidden, 'Forbidden: token expired'), Math.max(0, principal.expiresAt - Date.now()));
          expiry.unref();
          ctx.extra.expiry = expiry;
        }
        return true;
      },
      onClose: (ctx) => clearTimeout(ctx.extra.expiry),
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: async (args) => {
        const result = await (args.rootValue as EnvelopedRoot).subscribe(args);
        const socket = (args.contextValue as { socket?: WebSocket } | undefined)?.socket;
        return (socket ? closeWhenTooSlow(result, socket, logger) : result) as never;
      },
      onSubscribe: async (ctx, _id, payload) => {
        // graphql-ws has already registered this operation's id: count it among the live ones.
        if (Object.keys(ctx.subscriptions).length > limits.wsMaxSubscriptions) {
          return [
            new GraphQLError(`at most ${limits.wsMaxSubscriptions} operations at once on one connection`, {
              extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
            }),
          ];
        }
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          principal: ctx.extra.principal,
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error instanceof GraphQLError ? error : new GraphQLError(String(error))];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        const args: ExecutionArgs = {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe } satisfies EnvelopedRoot,
        };
        return args;
      },
    },
    wss,
  );
  return {
    wss,
    /** Closes every socket (1001 going away) and stops accepting new ones. */
    async close(): Promise<void> {
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/**
 * graphql-ws waits for each message to be written before taking the next event, so a client
 * that stops reading makes its subscription's buffer in the hub fill up (bounded by
 * SUBSCRIBER_BUFFER / SUBSCRIBER_BUFFER_BYTES). When that happens the whole connection is closed
 * with 1008 and the reason, rather than leaving a half-dead socket; the connection is cut after a
 * grace period if the client does not read the close frame either.
 */
function closeWhenTooSlow(result: unknown, socket: WebSocket, logger: Logger): unknown {
  if (!isAsyncIterable(result)) return result;
  const close = (reason: string) => {
    if (socket.readyState !== socket.OPEN) return;
    logger.warn({ reason }, 'WebSocket subscriber too slow; disconnecting it');
    socket.close(TOO_SLOW_CLOSE_CODE, reason.slice(0, 120));
    setTimeout(() => socket.terminate(), STALLED_CLOSE_GRACE_MS).unref();
  };
  const iterator = result[Symbol.asyncIterator]();
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      try {
        const step = await iterator.next();
        const tooSlow = !step.done && overflowIn(step.value);
        if (tooSlow) close(tooSlow);
        return step;
      } catch (error) {
        const tooSlow = overflowIn({ errors: [error] });
        if (tooSlow) close(tooSlow);
        throw error;
      }
    },
    return: () => iterator.return?.() ?? Promise.resolve({ done: true, value: undefined }),
    throw: (error: unknown) => iterator.throw?.(error) ?? Promise.reject(error),
  };
}

function overflowIn(value: unknown): string | undefined {
  const errors = (value as { errors?: unknown[] } | undefined)?.errors ?? [];
  for (const error of errors) {
    const candidate = error as { originalError?: unknown; extensions?: Record<string, unknown>; message?: string };
    if (candidate instanceof SubscriberOverflowError || candidate.originalError instanceof SubscriberOverflowError) {
      return candidate.message ?? 'subscriber too slow';
    }
    if (candidate.extensions?.['code'] === 'SUBSCRIBER_TOO_SLOW') return candidate.message ?? 'subscriber too slow';
  }
  return undefined;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === 'function';
}
