import { connect as amqpConnect, credentials, type Channel, type ChannelModel, type RecoveringChannelModel, type SocketOptions } from 'amqplib';
import type { TlsSettings } from '../../config/broker-security.js';
import type { Secret } from '../../config/secret.js';
import { BrokerUnavailableError, errorMessage, type GatewayError } from '../../errors.js';
import { backoffDelay, type BackoffPolicy } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';
import type { BrokerConnectionStatus } from '../broker.js';
import { closeChannel, type ConnectionLink } from './channel-part.js';
import { connectionRefused, isPermanent } from './errors.js';
import { redactUrl } from '../redact-url.js';
import { certificateFailure, tlsConnectionOptions } from '../tls.js';

/** A TCP connect or AMQP handshake that takes longer than this counts as a failed attempt. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface RabbitMqConnectionOptions {
  readonly url: string;
  /** CA and client certificate for an amqps:// URL. */
  readonly tls?: TlsSettings | undefined;
  /** The password of the user the URL names, when it is not in the URL (`RABBITMQ_PASSWORD_FILE`). */
  readonly password?: Secret | undefined;
  /** Shown in RabbitMQ's management UI and `rabbitmqctl list_connections`. */
  readonly connectionName: string;
  readonly reconnect: BackoffPolicy;
  /**
   * Runs on every new connection before it counts as connected: a throw drops that connection
   * and tries again after the backoff (or, before the first success, ends `connect()` when
   * another attempt cannot help).
   */
  readonly setUp: (model: ChannelModel) => Promise<void>;
}

/**
 * The one AMQP connection of a gateway process, kept up by amqplib's opt-in recovery: after a
 * loss it reconnects with exponential backoff and jitter, runs `setUp` on the new connection,
 * and only then reports itself connected.
 */
export class RabbitMqConnection implements ConnectionLink {
  readonly retry: BackoffPolicy;
  private recovering: RecoveringChannelModel | undefined;
  private model: ChannelModel | undefined;
  private connecting: Promise<void> | undefined;
  private rejectConnecting: ((error: GatewayError) => void) | undefined;
  private connected = false;
  private connectedOnce = false;
  private closed = false;
  private lastError: string | null = null;

  constructor(
    private readonly options: RabbitMqConnectionOptions,
    private readonly logger: Logger,
  ) {
    this.retry = options.reconnect;
  }

  /**
   * Starts connecting; resolves once connected and set up. Rejects only when the broker refuses
   * this configuration (login, virtual host, an exchange declared differently); a broker that is
   * merely unreachable is retried in the background, for ever.
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new BrokerUnavailableError('the RabbitMQ connection is closed'));
    this.connecting ??= new Promise<void>((resolve, reject) => {
      this.rejectConnecting = reject;
      this.open(resolve, reject).catch((error: unknown) =>
        reject(new BrokerUnavailableError(`could not start connecting to RabbitMQ: ${errorMessage(error)}`, { cause: error })),
      );
    });
    return this.connecting;
  }

  current(): ChannelModel | undefined {
    return this.model;
  }

  status(): BrokerConnectionStatus {
    return { connected: this.connected, lastError: this.lastError };
  }

  async withChannel<T>(use: (channel: Channel) => Promise<T>): Promise<T> {
    const model = this.model;
    if (!model || !this.connected) {
      throw new BrokerUnavailableError(`RabbitMQ is not connected${this.lastError ? `: ${this.lastError}` : ''}`);
    }
    const channel = await model.createChannel();
    // A failing check closes this channel with an 'error' event; the rejected call reports it.
    channel.on('error', (error: unknown) => this.logger.debug({ err: error }, 'RabbitMQ closed a short-lived channel'));
    try {
      return await use(channel);
    } finally {
      await closeChannel(channel, this.logger);
    }
  }

  /** Stops reconnecting and closes the connection (and with it every channel). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.connected = false;
    this.rejectConnecting?.(new BrokerUnavailableError('the RabbitMQ connection was closed before it was established'));
    await this.recovering?.close();
    this.model = undefined;
  }

  private async open(resolve: () => void, reject: (error: GatewayError) => void): Promise<void> {
    const { url, connectionName, reconnect } = this.options;
    const recovering = await amqpConnect(url, {
      timeout: CONNECT_TIMEOUT_MS,
      clientProperties: { connection_name: connectionName },
      ...this.secureOptions(),
      recovery: {
        waitForConnect: false,
        maxRetries: Infinity,
        calculateDelay: (attempt) => backoffDelay(reconnect, attempt),
        setup: (model: ChannelModel) => this.setUp(model),
      },
    });
    this.recovering = recovering;
    if (this.closed) {
      await recovering.close();
      return;
    }
    const where = redactUrl(url, 'RABBITMQ_URL');
    recovering.on('connect', () => {
      this.connected = true;
      this.connectedOnce = true;
      this.lastError = null;
      this.logger.info({ url: where }, 'connected to RabbitMQ');
      resolve();
    });
    recovering.on('disconnect', (error: Error) => {
      this.lost(error);
      this.logger.warn({ err: error, url: where }, 'lost the RabbitMQ connection; reconnecting');
    });
    recovering.on('connect-failed', (error: Error) => {
      this.lost(error);
      if (!this.connectedOnce && (isPermanent(error) || certificateFailure(error))) {
        const refused = connectionRefused(error, url, this.options.password);
        this.lastError = refused.message;
        this.logger.error({ err: refused, url: where }, 'RabbitMQ refused this configuration; not retrying');
        reject(refused);
        void this.close();
        return;
      }
      this.logger.warn({ err: error, url: where }, 'could not connect to RabbitMQ; retrying');
    });
    recovering.on('reconnect-scheduled', ({ attempt, delay }: { attempt: number; delay: number }) =>
      this.logger.debug({ attempt, delayMs: delay }, 'RabbitMQ reconnect scheduled'),
    );
    recovering.on('reconnect-failed', (error: Error) => this.logger.error({ err: error }, 'RabbitMQ recovery gave up'));
    recovering.on('error', (error: Error) => this.logger.warn({ err: error }, 'RabbitMQ connection error'));
    recovering.on('blocked', (reason: string) => {
      this.lastError = `RabbitMQ blocked publishing: ${reason}`;
      this.logger.warn({ reason }, 'RabbitMQ blocked this connection (resource alarm); publishes wait');
    });
    recovering.on('unblocked', () => {
      if (this.lastError?.startsWith('RabbitMQ blocked')) this.lastError = null;
      this.logger.info('RabbitMQ unblocked this connection');
    });
    recovering.on('handler-error', (error: Error, event: string) => this.logger.error({ err: error, event }, 'a RabbitMQ event listener threw'));
  }

  /** TLS options and a password kept out of the URL: the one place they are handed to amqplib. */
  private secureOptions(): SocketOptions {
    const { url, tls, password } = this.options;
    const user = URL.canParse(url) ? decodeURIComponent(new URL(url).username) : '';
    return {
      ...(tls ? tlsConnectionOptions(tls) : {}),
      ...(password ? { credentials: credentials.plain(user, password.reveal()) } : {}),
    };
  }

  private async setUp(model: ChannelModel): Promise<void> {
    // amqplib listens to a new connection only once set-up succeeded; until then an 'error' event
    // without a listener would crash the process. The failure itself reaches 'connect-failed'.
    const duringSetUp = (error: unknown) => this.logger.debug({ err: error }, 'RabbitMQ connection error during set-up');
    model.on('error', duringSetUp);
    this.model = model;
    await this.options.setUp(model);
    // From here amqplib listens (in the same tick) and re-emits errors on the recovering model,
    // unless it is closing, when it drops this connection without listening to it.
    if (!this.closed) model.off('error', duringSetUp);
  }

  private lost(error: unknown): void {
    this.model = undefined;
    this.connected = false;
    this.lastError = errorMessage(error);
  }
}
