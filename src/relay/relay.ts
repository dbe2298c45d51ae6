import { randomUUID } from 'node:crypto';
import type { Broker } from '../brokers/broker.js';
import { SETTING_DEFAULTS } from '../config/config.js';
import { errorMessage, PublishError, UnroutableEventError } from '../errors.js';
import { outboxRowToEvent, type ClaimedRow, type OutboxRepository, type OutboxTaker, type PublishResult } from '../store/outbox-repository.js';
import { pruneInBatches } from '../store/prune.js';
import { backoffDelay, sleep, type BackoffPolicy } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';
import type { Signal } from '../util/signal.js';
import { RelaySpans } from '../tracing/relay-spans.js';
import type { Tracing } from '../tracing/tracing.js';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js';

export interface RelayOptions {
  /**
   * Most rows per broker publish.
   * @default the default of `RELAY_BATCH_SIZE`
   */
  batchSize?: number;
  /**
   * Batches in flight at once (rows of one key are never in two batches at once).
   * @default 2
   */
  concurrency?: number;
  /**
   * Fallback poll for rows written by other processes; rows written here wake the relay at once.
   * @default the default of `RELAY_POLL_INTERVAL_MS`
   */
  pollIntervalMs?: number;
  /**
   * How long a claim on rows holds if this process dies before settling them.
   * @default the default of `RELAY_LEASE_MS`
   */
  leaseMs?: number;
  /**
   * Delay before a row that failed to publish is tried again.
   * @default { initialMs: 500, maxMs: 60000, multiplier: 2, jitter: 0.2 }
   */
  backoff?: BackoffPolicy;
  /**
   * PUBLISHED rows older than this are deleted. 0 keeps them forever.
   * @default the default of `OUTBOX_RETENTION_HOURS`
   */
  retentionMs?: number;
  /** @default 60000 */
  pruneIntervalMs?: number;
  circuitBreaker?: Omit<CircuitBreakerOptions, 'onStateChange'>;
  /** Identifies this relay's claims. @default a random id */
  owner?: string;
  /**
   * Take rows straight from this process's commits (`OutboxRepository.handOffTo`) instead of
   * claiming them from the table afterwards.
   * @default true
   */
  handOff?: boolean;
}

export interface RelayDeps {
  outbox: OutboxRepository;
  broker: Broker;
  /** Notified after outbox commits (see `Store.onOutboxChange`). */
  wake: Signal;
  logger: Logger;
  /**
   * Told of each event the broker confirmed: when its row was written and when the confirm came
   * (epoch ms), for the commit → confirm latency. Runs on the publish path, once per event: keep
   * it to an observation.
   */
  onConfirmed?: ((createdAt: Date, confirmedAt: number) => void) | undefined;
  /** Makes a "relay" span per event published, while spans are exported. */
  tracing?: Tracing | undefined;
}

export interface RelayStats {
  /** Events this relay saw confirmed by the broker since it started. */
  published: number;
  /** Publish attempts of single events that failed (each retry of an event counts again). */
  failed: number;
}

/** Rows sent while the circuit is half-open: enough to prove the broker is back, little to lose. */
const PROBE_BATCH = 8;
/** Pause after the store itself failed, so a broken disk does not spin the loop. */
const STORE_ERROR_PAUSE_MS = 1000;
/** Shortest idle wait, so a row that is due but raced away never makes the loop spin. */
const MIN_IDLE_WAIT_MS = 25;

/**
 * Moves outbox rows to the broker: claims due rows oldest first, publishes them as one batch,
 * and marks them PUBLISHED only after the broker confirmed. Failed rows stay PENDING with their
 * attempts and error, and come back after an exponential backoff; a circuit breaker pauses
 * publishing while the broker is down.
 *
 * Rows committed by this process reach it without a claim: the commit writes them claimed for
 * this relay and hands them over (`take`), so under a steady stream of single mutations the
 * relay's bookkeeping is one settle per batch. Everything else (rows of other processes, rows
 * whose key has an earlier row pending, retries) is claimed from the table as before.
 */
export class Relay implements OutboxTaker {
  readonly breaker: CircuitBreaker;
  readonly stats: RelayStats = { published: 0, failed: 0 };
  private readonly options: Required<Omit<RelayOptions, 'circuitBreaker'>>;
  private readonly abort = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  /** Rows handed over by commits, claimed for this relay, waiting for a batch. */
  private handed: ClaimedRow[] = [];
  /** Ids of every row this relay holds a claim on (handed and in flight), for lease renewal. */
  private readonly held = new Set<number>();
  private renewal: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private lastPrune = 0;
  private pruning: Promise<void> | undefined;

  constructor(
    private readonly deps: RelayDeps,
    options: RelayOptions = {},
  ) {
    this.options = {
      batchSize: options.batchSize ?? SETTING_DEFAULTS.relay.batchSize,
      concurrency: options.concurrency ?? 2,
      pollIntervalMs: options.pollIntervalMs ?? SETTING_DEFAULTS.relay.pollIntervalMs,
      leaseMs: options.leaseMs ?? SETTING_DEFAULTS.relay.leaseMs,
      backoff: options.backoff ?? { initialMs: 500, maxMs: 60_000, multiplier: 2, jitter: 0.2 },
      retentionMs: options.retentionMs ?? SETTING_DEFAULTS.relay.retentionMs,
      pruneIntervalMs: options.pruneIntervalMs ?? 60_000,
      owner: options.owner ?? `relay-${randomUUID()}`,
      handOff: options.handOff ?? true,
    };
    this.breaker = new CircuitBreaker({
      ...options.circuitBreaker,
      onStateChange: (state, reason) => deps.logger.warn({ broker: deps.broker.kind, circuit: state, reason }, `relay circuit ${state}`),
    });
  }

  get owner(): string {
    return this.options.owner;
  }

  get leaseMs(): number {
    return this.options.leaseMs;
  }

  start(): void {
    if (this.loop) return;
    // A slow broker (a resource alarm, long confirm timeouts, several waves) must not let the
    // lease lapse while rows are held: another relay would publish them again.
    this.renewal = setInterval(() => this.renew(), this.options.leaseMs / 3);
    if (this.options.handOff) this.deps.outbox.handOffTo(this);
    this.loop = this.run().catch((error: unknown) => {
      this.deps.logger.fatal({ err: error }, 'relay loop crashed');
    });
  }

  /**
   * Stops taking rows, waits for batches in flight to be confirmed and settled, and gives back
   * handed rows it did not send, so another relay (or the next start) need not wait for the lease.
   */
  async stop(): Promise<void> {
    this.deps.outbox.handOffTo(undefined);
    this.abort.abort();
    await this.loop;
    await Promise.all([...this.inFlight, this.pruning]);
    clearInterval(this.renewal);
    const unsent = this.handed.splice(0).map((row) => row.id);
    if (unsent.length > 0) {
      await this.deps.outbox.release(this.options.owner, unsent).catch((error: unknown) => {
        this.deps.logger.warn({ err: error, ids: unsent }, 'relay could not give back handed rows; they wait for the lease');
      });
    }
  }

  /** Rows a commit may hand over now: none while the circuit is not closed or batches pile up. */
  capacity(): number {
    if (this.stopping || this.breaker.state !== 'CLOSED') return 0;
    return Math.max(0, this.options.batchSize * this.options.concurrency - this.handed.length);
  }

  take(rows: readonly ClaimedRow[]): void {
    for (const row of rows) {
      this.handed.push(row);
      this.held.add(row.id);
    }
    this.deps.wake.notify();
  }

  private renew(): void {
    if (this.held.size === 0) return;
    this.deps.outbox.renew(this.options.owner, [...this.held], this.options.leaseMs).catch((error: unknown) => {
      this.deps.logger.warn({ err: error }, 'relay could not renew its claim');
    });
  }

  private get stopping(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    const { outbox } = this.deps;
    while (!this.stopping) {
      this.pruneIfDue();
      if (this.inFlight.size >= this.options.concurrency) {
        await Promise.race(this.inFlight);
        continue;
      }
      if (!this.breaker.tryAcquire()) {
        // Open circuit, or a probe out: wait for the probe's verdict, else for the cooldown.
        if (this.inFlight.size > 0) await Promise.race(this.inFlight);
        else await sleep(Math.max(50, this.breaker.waitMs()), this.abort.signal);
        continue;
      }
      const probing = this.breaker.probing;
      const limit = probing ? PROBE_BATCH : this.options.batchSize;
      let rows: ClaimedRow[];
      try {
        rows = this.handed.length > 0 ? this.handed.splice(0, limit) : await outbox.claim({ owner: this.options.owner, limit, leaseMs: this.options.leaseMs });
      } catch (error) {
        this.breaker.release();
        this.deps.logger.error({ err: error }, 'relay could not claim outbox rows');
        await sleep(STORE_ERROR_PAUSE_MS, this.abort.signal);
        continue;
      }
      if (rows.length === 0) {
        this.breaker.release();
        // With a batch out, its end is the next moment worth looking again (a commit meanwhile
        // is remembered by the signal); otherwise sleep until woken, due, or the poll.
        if (this.inFlight.size > 0) await Promise.race(this.inFlight);
        else await this.deps.wake.wait(await this.idleWaitMs(), this.abort.signal);
        continue;
      }
      const batch = this.publish(rows).finally(() => this.inFlight.delete(batch));
      this.inFlight.add(batch);
      // While probing, wait for the verdict before claiming more.
      if (probing) await batch;
    }
  }

  private async idleWaitMs(): Promise<number> {
    let next: number | null = null;
    try {
      next = await this.deps.outbox.nextDueAt();
    } catch {
      /* the claim path reports store errors */
    }
    const poll = this.options.pollIntervalMs;
    return next === null ? poll : Math.min(poll, Math.max(MIN_IDLE_WAIT_MS, next - Date.now()));
  }

  /**
   * Publishes claimed rows in waves: wave n holds the n-th row of every key (rows without a key
   * all go in the first wave). A wave is sent only after the previous one was confirmed, and a
   * key whose row failed sends nothing more in this round, so an event is never confirmed ahead
   * of an earlier event of its key. Distinct keys, the common case, make a single wave.
   */
  private async publish(rows: ClaimedRow[]): Promise<void> {
    for (const row of rows) this.held.add(row.id);
    try {
      await this.publishWaves(rows);
    } finally {
      for (const row of rows) this.held.delete(row.id);
    }
  }

  private async publishWaves(rows: ClaimedRow[]): Promise<void> {
    const { outbox, logger } = this.deps;
    const results: PublishResult[] = [];
    const held: number[] = [];
    const failedKeys = new Set<string>();
    let brokerDown = false;
    const keyOf = new Map(rows.map((row) => [row.id, row.key]));
    for (const wave of waves(rows)) {
      const sendable: ClaimedRow[] = [];
      for (const row of wave) {
        if (!brokerDown && (row.key === null || !failedKeys.has(row.key))) sendable.push(row);
        else held.push(row.id);
      }
      if (sendable.length === 0) continue;
      const outcome = await this.publishWave(sendable);
      const confirmedAt = Date.now();
      const { onConfirmed } = this.deps;
      results.push(...outcome);
      let failed = 0;
      // The outcome lists the rows of the wave in order.
      for (let i = 0; i < outcome.length; i++) {
        const result = outcome[i]!;
        if (result.ok) {
          onConfirmed?.(sendable[i]!.createdAt, confirmedAt);
          continue;
        }
        failed++;
        const key = keyOf.get(result.id);
        if (key != null) failedKeys.add(key);
      }
      this.stats.published += outcome.length - failed;
      this.stats.failed += failed;
      brokerDown = failed === sendable.length;
    }
    try {
      await outbox.settle(this.options.owner, results);
      // Held rows were not tried: no attempt is counted, and the failed row ahead of them
      // keeps them waiting through its backoff.
      await outbox.release(this.options.owner, held);
    } catch (error) {
      // The broker has the confirmed events; the rows stay claimed until the lease ends and are
      // then published again. Consumers are idempotent: the cost is a duplicate, not a loss.
      logger.error({ err: error, ids: rows.map((r) => r.id) }, 'relay could not record publish results');
    }
  }

  private async publishWave(rows: ClaimedRow[]): Promise<PublishResult[]> {
    const { broker, logger } = this.deps;
    const events = rows.map((row) => row.event ?? outboxRowToEvent(row));
    const spans = RelaySpans.start(this.deps.tracing, events, rows);
    try {
      await broker.publish(events);
      spans?.end();
      this.breaker.success();
      return rows.map((row) => ({ id: row.id, ok: true }));
    } catch (error) {
      const failures = error instanceof PublishError ? error.failures : null;
      const now = Date.now();
      const results = rows.map((row): PublishResult => {
        const failure = failures ? failures.get(row.eventId) : error;
        if (failures && !failure) return { id: row.id, ok: true };
        const permanent = (failure as { retryable?: unknown } | undefined)?.retryable === false;
        return {
          id: row.id,
          ok: false,
          error: errorMessage(failure),
          retryAt: permanent ? null : now + backoffDelay(this.options.backoff, row.attempts + 1),
        };
      });
      spans?.end(results);
      const failed = results.filter((r) => !r.ok).length;
      // A broker that confirmed part of the batch is up, and so is one that only had nowhere to
      // route these events: only a whole batch lost to the broker itself counts against it.
      const reasons = failures ? [...failures.values()] : [error];
      const brokerFault = reasons.some((reason) => !(reason instanceof UnroutableEventError));
      if (failed === rows.length && brokerFault) this.breaker.failure(errorMessage(error));
      else this.breaker.success();
      logger.warn(
        { err: error, broker: broker.kind, failed, batch: rows.length, eventIds: rows.slice(0, 10).map((r) => r.eventId) },
        'relay publish failed; rows stay pending',
      );
      return results;
    }
  }

  /** Prunes in the background, so a large backlog of old rows never holds up publishing. */
  private pruneIfDue(): void {
    const { retentionMs, pruneIntervalMs } = this.options;
    const now = Date.now();
    if (retentionMs <= 0 || this.pruning || now - this.lastPrune < pruneIntervalMs) return;
    this.lastPrune = now;
    const { outbox, logger } = this.deps;
    this.pruning = pruneInBatches((batchSize) => outbox.prunePublished(now - retentionMs, batchSize), this.abort.signal)
      .then((pruned) => {
        if (pruned > 0) logger.info({ pruned }, 'pruned published outbox rows');
      })
      .catch((error: unknown) => logger.warn({ err: error }, 'could not prune the outbox'))
      .finally(() => {
        this.pruning = undefined;
      });
  }
}

/** Splits rows (in outbox order) into waves: the n-th row of each key goes into wave n. */
export function waves(rows: readonly ClaimedRow[]): ClaimedRow[][] {
  const result: ClaimedRow[][] = [];
  const perKey = new Map<string, number>();
  for (const row of rows) {
    let index = 0;
    if (row.key !== null) {
      index = perKey.get(row.key) ?? 0;
      perKey.set(row.key, index + 1);
    }
    (result[index] ??= []).push(row);
  }
  return result;
}
