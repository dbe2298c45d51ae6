import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { connect, errors as natsErrors, type NatsConnection } from '@nats-io/transport-node';
import { BrokerAuthenticationError, BrokerCapabilityError, BrokerUnavailableError, ConfigError, errorMessage } from '../../errors.js';
import { backoffDelay, sleep } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';
import { Signal } from '../../util/signal.js';
import type { BrokerConnectionStatus } from '../broker.js';
import { describeAuth, natsConnectOptions, natsTarget, type NatsTarget, type ResolvedNatsOptions } from './options.js';
import { redactUrl } from '../redact-url.js';
import { certificateFailure, certificateRefusal } from '../tls.js';

/** A usable connection: core NATS, plus JetStream in JetStream mode. */
export interface NatsSession {
  readonly nc: NatsConnection;
  readonly js?: JetStreamClient | undefined;
  readonly jsm?: JetStreamManager | undefined;
}

/** What the adapter's parts share: the connection, the options and the logger. */
export interface NatsDeps {
  readonly connector: NatsConnector;
  readonly options: ResolvedNatsOptions;
  readonly logger: Logger;
}

/**
 * Checks the server offers what the mode needs and sets it up (the stream). Throws
 * `ConfigError` / `BrokerCapabilityError` for what another attempt cannot fix; anything else is
 * retried.
 */
export type PrepareSession = (nc: NatsConnection) => Promise<NatsSession>;

/** Re-checks for consumers and subscriptions waiting for a connection, should a wake-up be missed. */
const RECHECK_MS = 1000;

/** Waits until `nc` has closed for good, or `signal` aborts. */
async function closedOrAborted(nc: NatsConnection, signal: AbortSignal): Promise<void> {
  let onAbort = () => {};
  const aborted = new Promise<void>((resolve) => {
    onAbort = () => resolve();
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([nc.closed(), aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

const isPermanent = (error: unknown) =>
  error instanceof ConfigError ||
  error instanceof BrokerCapabilityError ||
  error instanceof natsErrors.AuthorizationError ||
  error instanceof natsErrors.UserAuthenticationExpiredError ||
  error instanceof natsErrors.InvalidArgumentError ||
  certificateFailure(error) !== undefined;

/**
 * What `connect()` rejects with when the server refused this gateway for good: refused
 * credentials or certificates as `BrokerAuthenticationError` naming the variable to fix.
 */
function refusal(error: unknown, target: NatsTarget, where: string): unknown {
  if (error instanceof natsErrors.AuthorizationError || error instanceof natsErrors.UserAuthenticationExpiredError) {
    const { variable, who } = describeAuth(target.auth);
    return new BrokerAuthenticationError(`${variable}: NATS at ${where} refused ${who}: ${errorMessage(error)}`, { cause: error });
  }
  const certificate = certificateRefusal(error, 'NATS_', 'NATS', where);
  if (certificate) return certificate;
  if (error instanceof natsErrors.InvalidArgumentError) return new ConfigError(`NATS_URL ${where}: ${errorMessage(error)}`, { cause: error });
  return error;
}

/**
 * One gateway process's connection to NATS. It connects with backoff until it succeeds (or meets
 * a problem retrying cannot fix), then leaves reconnects to nats.js, configured to retry without
 * limit and with the same backoff. After every (re)connect the session is prepared again (stream
 * and capabilities), so a server that lost its store gets its stream back. `status()` reports it.
 */
export class NatsConnector {
  private nc: NatsConnection | undefined;
  private session: NatsSession | undefined;
  private connected = false;
  private lastError: string | null = null;
  private connecting: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private readonly changed = new Signal();
  /** The reconnect delay picked for the current count of failed attempts, so jitter holds still. */
  private reconnectDelay = { attempts: -1, ms: 0 };
  /** The server address without credentials, for logs and errors. */
  private readonly where: string;
  private readonly target: NatsTarget;

  constructor(
    private readonly options: ResolvedNatsOptions,
    private readonly prepare: PrepareSession,
    private readonly logger: Logger,
  ) {
    this.where = redactUrl(options.url, 'NATS_URL');
    this.target = natsTarget(options);
  }

  connect(): Promise<void> {
    return (this.connecting ??= this.run());
  }

  /** The session while connected and prepared. */
  current(): NatsSession | undefined {
    return this.connected ? this.session : undefined;
  }

  /** Resolves with the session once connected (at once when it is), or undefined after `signal` or close. */
  async ready(signal?: AbortSignal): Promise<NatsSession | undefined> {
    for (;;) {
      if (this.stopping.signal.aborted || signal?.aborted) return undefined;
      const session = this.current();
      if (session) return session;
      await this.changed.wait(RECHECK_MS, signal ?? this.stopping.signal);
    }
  }

  /**
   * Calls `open` on every connection this connector makes from now on, as each becomes ready;
   * `openedOn` is one the caller has already opened on. nats.js re-subscribes by itself across
   * reconnects, but a connection that closed for good is replaced by a new one that starts with
   * no subscriptions: core-mode subscriptions use this to come back on it. Ends with `signal`.
   */
  follow(
    open: (session: NatsSession) => Promise<void>,
    options: { signal: AbortSignal; openedOn?: NatsConnection | undefined; onError: (error: unknown) => void },
  ): void {
    const { signal, onError } = options;
    void (async () => {
      let last = options.openedOn;
      while (!signal.aborted) {
        if (last) await closedOrAborted(last, signal);
        const session = await this.ready(signal);
        if (!session) return;
        if (session.nc === last) {
          // Closed, but the connector has not dropped it yet.
          await sleep(RECHECK_MS / 10, signal);
          continue;
        }
        last = session.nc;
        await open(session).catch(onError);
      }
    })();
  }

  status(): BrokerConnectionStatus {
    return { connected: this.current() !== undefined, lastError: this.lastError };
  }

  /** Drains the connection (flushing what nats.js buffered), or closes it when the server is away. */
  async close(): Promise<void> {
    this.stopping.abort();
    this.changed.notify();
    // A failed first connection was reported to whoever called connect().
    await this.connecting?.catch(() => undefined);
    const nc = this.nc;
    const wasConnected = this.connected;
    this.connected = false;
    if (!nc || nc.isClosed()) return;
    try {
      // A drain while disconnected would wait for a server that may never come back.
      if (nc.isDraining()) await nc.closed();
      else if (wasConnected) await nc.drain();
      else await nc.close();
    } catch (error) {
      this.logger.warn({ err: error, url: this.where }, 'could not drain the NATS connection; closing it');
      await nc.close().catch((cause: unknown) => {
        this.logger.warn({ err: cause, url: this.where }, 'could not close the NATS connection');
      });
    }
  }

  private async run(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.stopping.signal.aborted) throw new BrokerUnavailableError('the NATS broker was closed before it connected');
      try {
        const nc = (this.nc ??= await this.dial());
        this.session = await this.prepare(nc);
        this.up();
        this.logger.info({ url: this.where, server: nc.info?.server_name, jetstream: this.options.jetstream }, 'connected to NATS');
        return;
      } catch (error) {
        if (isPermanent(error)) {
          const refused = refusal(error, this.target, this.where);
          this.lastError = errorMessage(refused);
          await this.discard();
          throw refused;
        }
        this.down(error, attempt);
        await sleep(backoffDelay(this.options.reconnectBackoff, attempt), this.stopping.signal);
      }
    }
  }

  private async dial(): Promise<NatsConnection> {
    const nc = await connect({
      ...natsConnectOptions(this.target),
      name: this.options.name,
      maxReconnectAttempts: -1,
      reconnectDelayHandler: () => this.nextReconnectDelay(),
      // Otherwise every request (each JetStream publish is one) makes two Error objects up front
      // for the stack of a timeout that rarely comes: ~4 % of the gateway's CPU under publishEvent
      // load. A failed request still says what failed; only the caller's async stack is left out.
      noAsyncTraces: true,
    });
    this.watch(nc);
    return nc;
  }

  /** nats.js asks before every reconnect attempt; its server entry counts the failed ones. */
  private nextReconnectDelay(): number {
    const attempts = this.nc?.getServers()[0]?.reconnects ?? 0;
    if (attempts !== this.reconnectDelay.attempts) {
      this.reconnectDelay = { attempts, ms: backoffDelay(this.options.reconnectBackoff, attempts + 1) };
    }
    return this.reconnectDelay.ms;
  }

  private watch(nc: NatsConnection): void {
    void (async () => {
      for await (const status of nc.status()) {
        switch (status.type) {
          case 'disconnect':
            this.connected = false;
            this.lastError = `lost the connection to ${status.server}; reconnecting`;
            this.logger.warn({ url: this.where, server: status.server }, 'NATS connection lost; reconnecting');
            break;
          case 'reconnect':
            this.logger.info({ url: this.where, server: status.server }, 'NATS reconnected');
            void this.reprepare(nc);
            break;
          case 'error':
            this.lastError = errorMessage(status.error);
            this.logger.warn({ err: status.error, url: this.where }, 'NATS reported an error');
            break;
          case 'slowConsumer':
            this.logger.warn({ subject: status.sub.getSubject(), pending: status.pending }, 'NATS slow consumer');
            break;
          default:
            break;
        }
      }
    })();
    void nc.closed().then((error) => {
      if (this.nc !== nc) return;
      this.nc = undefined;
      this.connected = false;
      if (this.stopping.signal.aborted) return;
      // Only a fatal error (e.g. credentials refused on reconnect) ends a connection nats.js retries forever.
      this.lastError = errorMessage(error ?? 'connection closed');
      this.logger.error({ err: error, url: this.where }, 'NATS connection closed; connecting again');
      this.connecting = this.run().catch((cause: unknown) => {
        this.logger.error({ err: cause, url: this.where }, 'NATS cannot reconnect');
      });
    });
  }

  /** After a reconnect: set the stream up again before reporting connected. */
  private async reprepare(nc: NatsConnection): Promise<void> {
    for (let attempt = 1; this.nc === nc && !nc.isClosed() && !this.stopping.signal.aborted; attempt++) {
      try {
        this.session = await this.prepare(nc);
        this.up();
        return;
      } catch (error) {
        this.down(error, attempt);
        await sleep(backoffDelay(this.options.reconnectBackoff, attempt), this.stopping.signal);
      }
    }
  }

  private up(): void {
    this.connected = true;
    this.lastError = null;
    this.changed.notify();
  }

  private down(error: unknown, attempt: number): void {
    this.connected = false;
    this.lastError = errorMessage(error);
    this.logger.warn({ err: error, url: this.where, attempt }, 'NATS not ready; retrying');
  }

  private async discard(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    await nc?.close().catch((error: unknown) => {
      this.logger.debug({ err: error, url: this.where }, 'could not close a refused NATS connection');
    });
  }
}
