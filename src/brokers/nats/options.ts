import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type TlsOptions } from '@nats-io/transport-node';
import type { NatsAuth, TlsSettings } from '../../config/broker-security.js';
import type { BrokerSettings } from '../../config/config.js';
import { Secret } from '../../config/secret.js';
import { tlsConnectionOptions } from '../tls.js';
import type { BackoffPolicy } from '../../util/backoff.js';

/** Tuning beyond the environment settings; the defaults suit production. */
export interface NatsTuning {
  /**
   * Client name shown by the server's monitoring (`/connz`).
   * @default 'event-gateway'
   */
  name?: string;
  /**
   * How long JetStream waits for a delivery to be settled before it redelivers it. Handlers may
   * run longer: the adapter reports progress (`working()`) while a handler runs, so this only
   * decides how soon a delivery comes back after its process died.
   * @default 30000
   */
  ackWaitMs?: number;
  /**
   * Deliveries JetStream allows beyond a consumer's `maxAttempts` (its `max_deliver` safety net).
   * The pipeline dead-letters at `maxAttempts`; the margin covers deliveries that never reached a
   * handler's verdict (a process that died mid-delivery), so the pipeline always decides first.
   * @default 5
   */
  maxDeliverMargin?: number;
  /**
   * How long one pull request waits at the server for messages before it is renewed.
   * @default 5000
   */
  pullExpiresMs?: number;
  /**
   * How long `publish` waits for each JetStream PubAck (and core mode for its flush).
   * @default 5000
   */
  publishTimeoutMs?: number;
  /**
   * The stream's duplicate window: a `Nats-Msg-Id` seen within it is stored once. Capped at
   * `maxAgeMs` when that is set, as the server requires.
   * @default 120000
   */
  duplicateWindowMs?: number;
  /**
   * Delays between connection attempts, both before the first connection and (through nats.js,
   * without limit) after one is lost; also between failed pulls.
   * @default { initialMs: 100, maxMs: 2000, multiplier: 2, jitter: 0.2 }
   */
  reconnectBackoff?: BackoffPolicy;
  /**
   * Core mode only: deliveries a consumer holds beyond those its handlers run. Core NATS has no
   * flow control, so past this a delivery is dropped (and logged) rather than growing memory.
   * @default 10000
   */
  coreBacklogLimit?: number;
}

/** What `NatsBroker` takes: the `nats` broker settings, the per-topic settings, and tuning. */
export type NatsBrokerOptions = BrokerSettings['nats'] & { readonly topics: BrokerSettings['topics'] } & NatsTuning;

export type ResolvedNatsOptions = BrokerSettings['nats'] & { readonly topics: BrokerSettings['topics'] } & Required<NatsTuning>;

export function resolveNatsOptions(options: NatsBrokerOptions): ResolvedNatsOptions {
  return {
    ...options,
    name: options.name ?? 'event-gateway',
    ackWaitMs: options.ackWaitMs ?? 30_000,
    maxDeliverMargin: options.maxDeliverMargin ?? 5,
    pullExpiresMs: options.pullExpiresMs ?? 5000,
    publishTimeoutMs: options.publishTimeoutMs ?? 5000,
    duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
    reconnectBackoff: options.reconnectBackoff ?? { initialMs: 100, maxMs: 2000, multiplier: 2, jitter: 0.2 },
    coreBacklogLimit: options.coreBacklogLimit ?? 10_000,
  };
}

/** How `NatsConnector` reaches the server and logs in. */
export interface NatsTarget {
  /** The server, without credentials. */
  readonly servers: string;
  /** Required TLS, with these CAs and client certificate; undefined: TLS only if the server asks for it. */
  readonly tls: TlsSettings | undefined;
  readonly auth: NatsAuth | undefined;
}

/**
 * Where and how to connect. nats.js takes no credentials from a server URL, so a NATS_URL's
 * `user:password@` (or a lone `token@`) becomes a `user` (or `token`) login named after NATS_URL,
 * and it ignores the scheme, so a tls:// URL is what requires TLS here.
 */
export function natsTarget(options: Pick<ResolvedNatsOptions, 'url' | 'tls' | 'auth'>): NatsTarget {
  const { url } = options;
  const tls = options.tls ?? (url.startsWith('tls://') ? {} : undefined);
  if (!URL.canParse(url)) return { servers: url, tls, auth: options.auth };
  const parsed = new URL(url);
  if (!parsed.username) return { servers: url, tls, auth: options.auth };
  const user = decodeURIComponent(parsed.username);
  const pass = decodeURIComponent(parsed.password);
  const servers = `${parsed.protocol}//${parsed.host}`;
  const auth: NatsAuth = pass ? { kind: 'user', user, password: new Secret(pass, 'NATS_URL') } : { kind: 'token', token: new Secret(user, 'NATS_URL') };
  return { servers, tls, auth: options.auth ?? auth };
}

/** The nats.js connect options for a target: the one place its secrets are handed over. */
export function natsConnectOptions(target: NatsTarget): Partial<ConnectionOptions> {
  // nats.js passes these on to Node's tls.connect as they are, the passphrase included.
  const tls = target.tls ? { tls: tlsConnectionOptions(target.tls) as TlsOptions } : {};
  const { auth } = target;
  const bytes = (secret: Secret) => new TextEncoder().encode(secret.reveal());
  switch (auth?.kind) {
    case undefined:
      return { servers: target.servers, ...tls };
    case 'user':
      return { servers: target.servers, ...tls, user: auth.user, pass: auth.password.reveal() };
    case 'token':
      return { servers: target.servers, ...tls, token: auth.token.reveal() };
    case 'nkey':
      return { servers: target.servers, ...tls, authenticator: nkeyAuthenticator(bytes(auth.seed)) };
    case 'creds':
      return { servers: target.servers, ...tls, authenticator: credsAuthenticator(bytes(auth.creds)) };
  }
}

/** For messages: the variable holding the secret the server refused, and whose it is. */
export function describeAuth(auth: NatsAuth | undefined): { variable: string; who: string } {
  switch (auth?.kind) {
    case undefined:
      return {
        variable: 'NATS_USER',
        who: 'a connection without credentials (set NATS_USER and NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED_FILE or NATS_CREDS_FILE)',
      };
    case 'user':
      return { variable: auth.password.source, who: `user "${auth.user}"` };
    case 'token':
      return { variable: auth.token.source, who: 'the token' };
    case 'nkey':
      return { variable: auth.seed.source, who: 'the NKey' };
    case 'creds':
      return { variable: auth.creds.source, who: 'the user in the creds file' };
  }
}
