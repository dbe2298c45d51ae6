import type { IncomingMessage, Server } from 'node:http';
import { type DocumentNode, type ExecutionArgs, GraphQLError } from 'graphql';
import { CloseCode, GRAPHQL_TRANSPORT_WS_PROTOCOL, makeServer } from 'graphql-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Authenticator } from '../auth/authenticator.js';
import { credentialsFromConnectionParams } from '../auth/credentials.js';
import type { Principal } from '../auth/principal.js';
import type { Limits } from '../config/config.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../util/logger.js';
import type { OriginPolicy } from './use-cross-site-protection.js';
import type { SubscriptionTracking } from '../metrics/use-operation-metrics.js';
import { OVER_WEBSOCKET } from '../schema/context.js';
import { SubscriptionGroups } from '../subscriptions/subscription-groups.js';
import { maskForClient } from './errors.js';
import { SocketWriter, type SocketWriterBounds } from './socket-writer.js';
import { subscribeOverWebSocket } from './use-grouped-subscriptions.js';
import type { GatewayYoga } from './yoga.js';

/** Close code for a client that stopped reading (RFC 6455 1008: policy violation). */
export const TOO_SLOW_CLOSE_CODE = 1008;
/** After asking a stalled client to close, how long before its connection is cut anyway. */
const STALLED_CLOSE_GRACE_MS = 10_000;
/** Every socket is pinged this often; one that has not answered the previous ping is cut. */
const KEEP_ALIVE_MS = 12_000;
/** What the context reads of the upgrade request: mutations on the socket take these as their own. */
const KEPT_HEADERS = ['x-correlation-id', 'traceparent', 'tracestate'] as const;

const NO_HEADERS: IncomingMessage['headers'] = {};

function pick(headers: IncomingMessage['headers'], names: readonly string[]): IncomingMessage['headers'] {
  let kept: IncomingMessage['headers'] | undefined;
  for (const name of names) if (headers[name] !== undefined) (kept ??= {})[name] = headers[name];
  return kept ?? NO_HEADERS;
}

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

/** What graphql-ws keeps per connection: as little as possible, there may be tens of thousands. */
type SocketExtra = {
  readonly socket: WebSocket;
  readonly writer: SocketWriter;
  /** The upgrade request's headers the context reads; the request itself is not kept. */
  readonly headers: IncomingMessage['headers'];
  principal?: Principal;
  expiry?: NodeJS.Timeout;
};

export interface WebSocketOptions {
  readonly yoga: GatewayYoga;
  /** Serves `events` subscriptions, one execution per event for each group of subscribers. */
  readonly groups: SubscriptionGroups;
  /** Counts the grouped subscriptions, which do not run through Yoga's subscribe hooks. */
  readonly subscriptions?: SubscriptionTracking | undefined;
  readonly authenticator: Authenticator;
  readonly limits: Limits;
  readonly logger: Logger;
  /** Per-socket bounds on frames waiting for a client that reads slowly. */
  readonly bounds: SocketWriterBounds;
  /** Browsers open WebSockets cross-site without any CORS check: the upgrade checks `Origin`. */
  readonly origins: OriginPolicy;
  /** Called once for each socket closed with 1008 because its frames piled up past `bounds`. */
  readonly onTooSlow?: (() => void) | undefined;
}

/**
 * graphql-ws (the `graphql-transport-ws` protocol, graphql-ws's own server core) on the same HTTP
 * server and path as Yoga. Every operation is parsed, validated (limits included) and given its
 * context by Yoga's envelop, as over HTTP, and executed through it, with its plugins and masking;
 * except `events` subscriptions, which join their group (`subscribeOverWebSocket`), whose frames
 * are written to the socket by the group itself: per subscriber, Yoga's subscribe hooks would keep
 * a context and iterator wrappers that cost more than the socket. Credentials
 * are checked once, in `connection_init`; the protocol's own rules close a socket that does not
 * init in time (4408), inits twice (4429) or reuses an operation id (4409); `ws` closes one that
 * sends a message over `maxPayload` (1009); a socket whose frames pile up past its bounds is closed
 * with 1008.
 */
export function attachWebSocket(server: Server, options: WebSocketOptions) {
  const { yoga, authenticator, limits, logger, groups } = options;
  const mask = (error: GraphQLError) => maskForClient(error, logger);
  const wss = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    maxPayload: limits.wsMaxPayloadBytes,
    handleProtocols: (protocols) => (protocols.has(GRAPHQL_TRANSPORT_WS_PROTOCOL) ? GRAPHQL_TRANSPORT_WS_PROTOCOL : false),
    // Per-message deflate costs memory per socket and CPU per frame; events are small JSON.
    perMessageDeflate: false,
    // Without this, any web page its user visits could read events through a gateway on localhost.
    verifyClient: (info, accept) =>
      accept(options.origins.allowsUpgrade(info.req.headers), 403, 'Forbidden: cross-site WebSocket from an origin not in CORS_ORIGINS'),
  });

  const protocol = makeServer<Record<string, unknown> | undefined, SocketExtra>({
    connectionInitWaitTimeout: limits.wsInitTimeoutMs,
    onConnect: async (ctx) => {
      const { socket } = ctx.extra;
      let principal: Principal;
      try {
        principal = await authenticator.authenticate(credentialsFromConnectionParams(ctx.connectionParams));
      } catch (error) {
        socket.close(CloseCode.Forbidden, `Forbidden: ${errorMessage(error)}`.slice(0, 120));
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
    subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
    onSubscribe: async (ctx, id, payload) => {
      // graphql-ws has already registered this operation's id: count it among the live ones.
      if (Object.keys(ctx.subscriptions).length > limits.wsMaxSubscriptions) {
        return [
          new GraphQLError(`at most ${limits.wsMaxSubscriptions} operations at once on one connection`, {
            extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
          }),
        ];
      }
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
        req: { headers: ctx.extra.headers },
        socket: ctx.extra.socket,
        params: payload,
        principal: ctx.extra.principal,
        [OVER_WEBSOCKET]: true,
      });
      let document: DocumentNode;
      try {
        document = parse(payload.query);
      } catch (error) {
        return [error instanceof GraphQLError ? error : new GraphQLError(String(error))];
      }
      const errors = validate(schema, document);
      if (errors.length > 0) return errors;
      if (SubscriptionGroups.handles(document, payload.operationName)) {
        const contextValue = (await contextFactory()) as unknown as Record<string, unknown>;
        const tracked = options.subscriptions?.start('websocket');
        const joined = await subscribeOverWebSocket(
          { document, query: payload.query, operationName: payload.operationName, variables: payload.variables, schema, contextValue },
          { id, writer: ctx.extra.writer },
          { groups, mask, tracked },
        );
        const run = () => joined;
        // Neither the context nor Yoga's functions stay with the operation: graphql-ws keeps these args.
        return {
          schema,
          document,
          operationName: payload.operationName,
          contextValue: undefined,
          rootValue: { execute: run, subscribe: run } satisfies EnvelopedRoot,
        };
      }
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
  });

  // One timer for every socket instead of one each: a socket that did not answer the last ping is cut.
  const alive = new WeakSet<WebSocket>();
  const keepAlive = setInterval(() => {
    for (const socket of wss.clients) {
      if (!alive.has(socket)) {
        socket.terminate();
        continue;
      }
      alive.delete(socket);
      socket.ping();
    }
  }, KEEP_ALIVE_MS);
  keepAlive.unref();

  wss.on('connection', (socket, request) => {
    alive.add(socket);
    socket.on('pong', () => alive.add(socket));
    socket.once('error', (error) => {
      logger.warn({ err: error }, 'WebSocket error; closing the connection');
      socket.terminate();
    });
    const writer = new SocketWriter(socket, options.bounds, (reason) => {
      if (socket.readyState !== socket.OPEN) return;
      logger.warn({ reason }, 'WebSocket subscriber too slow; disconnecting it');
      options.onTooSlow?.();
      socket.close(TOO_SLOW_CLOSE_CODE, reason.slice(0, 120));
      setTimeout(() => socket.terminate(), STALLED_CLOSE_GRACE_MS).unref();
    });
    const closed = protocol.opened(
      {
        protocol: socket.protocol,
        send: (data) => {
          writer.send(data);
          return Promise.resolve();
        },
        close: (code, reason) => socket.close(code, reason),
        onMessage: (cb) =>
          socket.on('message', (data) => {
            cb(String(data)).catch((error: unknown) => {
              logger.error({ err: error }, 'WebSocket message handling failed; closing the connection');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          }),
      },
      {
        socket,
        writer,
        headers: pick(request.headers, KEPT_HEADERS),
      },
    );
    socket.once('close', (code, reason) => void closed(code, String(reason)));
  });

  return {
    wss,
    /** Closes every socket (1001 going away) and stops accepting new ones. */
    async close(): Promise<void> {
      clearInterval(keepAlive);
      for (const socket of wss.clients) socket.close(1001, 'Going away');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
