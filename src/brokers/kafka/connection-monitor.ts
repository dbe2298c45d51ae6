import { errorMessage } from '../../errors.js';
import type { Logger } from '../../util/logger.js';
import type { BrokerConnectionStatus } from '../broker.js';
import { isUnreachable } from './errors.js';

/**
 * `status()` for a client that has no single connection: kafkajs opens sockets per producer,
 * consumer and admin and reconnects them on demand, and emits no "disconnected" event when Kafka
 * goes away. So the state is derived from outcomes: any answered request (a confirmed send, a
 * heartbeat, a group join, an admin call) proves Kafka is up; a request that found no Kafka to
 * talk to proves it is not. When nothing has shown either for `probeIntervalMs`, `probe` (a
 * metadata request) decides, so an idle gateway still notices an outage.
 */
export class ConnectionMonitor {
  private connected = false;
  private lastError: string | null = null;
  private lastSignal = 0;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;

  constructor(
    private readonly logger: Logger,
    private readonly probeIntervalMs: number,
  ) {}

  status(): BrokerConnectionStatus {
    return { connected: this.connected, lastError: this.lastError };
  }

  /** Kafka answered. The error of the outage that just ended is cleared with it. */
  up(): void {
    this.lastSignal = Date.now();
    if (this.connected) return;
    if (this.lastError !== null) this.logger.info({ previousError: this.lastError }, 'kafka reachable again');
    this.connected = true;
    this.lastError = null;
  }

  /**
   * A client failed. Only a failure to reach Kafka at all marks it down; an error Kafka answered
   * with (a coordinator moving, no leader yet after a restart) is only shown as `lastError`.
   */
  failed(error: unknown, context: Record<string, unknown> = {}): void {
    if (!isUnreachable(error)) {
      this.note(error);
      return;
    }
    this.lastSignal = Date.now();
    this.lastError = errorMessage(error);
    if (!this.connected) return;
    this.connected = false;
    this.logger.warn({ err: error, ...context }, 'kafka unreachable; clients keep retrying');
  }

  /** An error that says nothing about reachability (e.g. a refused message) but is worth showing. */
  note(error: unknown): void {
    this.lastError = errorMessage(error);
  }

  /** Starts the background probe; `probe` must reject when Kafka does not answer. */
  start(probe: () => Promise<unknown>): void {
    if (this.timer) return;
    this.timer = setInterval(
      () => {
        if (this.probing || Date.now() - this.lastSignal < this.probeIntervalMs) return;
        this.probing = true;
        probe()
          .then(
            () => this.up(),
            (error: unknown) => this.failed(error, { probe: true }),
          )
          .finally(() => (this.probing = false));
      },
      Math.max(100, Math.floor(this.probeIntervalMs / 2)),
    );
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.connected = false;
  }
}
