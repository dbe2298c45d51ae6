/**
 * Every failure the gateway expects has a class here. `code` is what GraphQL clients see in
 * `extensions.code`. `retryable` tells the relay whether a failed publish is worth another try
 * (else the outbox row becomes FAILED); in consumers only `PermanentHandlerError` skips the
 * remaining attempts.
 */
export class GatewayError extends Error {
  /** Stable machine-readable code, surfaced as `extensions.code` at the GraphQL edge. */
  readonly code: string = 'INTERNAL';
  /** Whether trying the same thing again later may succeed. */
  readonly retryable: boolean = false;
  /** Whether the message may be shown to API clients (otherwise Yoga masks it). */
  readonly expose: boolean = false;
  /** Extra fields for `extensions` (never secrets). */
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options?.details;
  }
}

/** The client sent something the gateway will not accept. Nothing was written. */
export class InvalidInputError extends GatewayError {
  override readonly code: string = 'BAD_USER_INPUT';
  override readonly expose = true;
}

/** An event is larger than the configured limit. Nothing was written. */
export class PayloadTooLargeError extends InvalidInputError {
  override readonly code = 'PAYLOAD_TOO_LARGE';
}

/** The caller is known but lacks the scope the operation needs. */
export class ForbiddenError extends GatewayError {
  override readonly code = 'FORBIDDEN';
  override readonly expose = true;
}

/** A looked-up record does not exist. */
export class NotFoundError extends GatewayError {
  override readonly code = 'NOT_FOUND';
  override readonly expose = true;
}

/** The operation is not allowed in the record's current state (e.g. replaying a discarded letter). */
export class ConflictError extends GatewayError {
  override readonly code = 'CONFLICT';
  override readonly expose = true;
}

/** The store could not be read or written (busy, disk full, I/O error). Nothing partial was written. */
export class StoreUnavailableError extends GatewayError {
  override readonly code = 'STORE_UNAVAILABLE';
  override readonly retryable = true;
  override readonly expose = true;
}

/**
 * A subscription cannot resume where the client asked: the broker no longer keeps the events
 * after that cursor (retention, a restart of a broker that keeps nothing, a stream made anew).
 * Resuming from it would leave a gap, so the subscription is refused instead.
 */
export class CursorExpiredError extends GatewayError {
  override readonly code = 'CURSOR_EXPIRED';
  override readonly expose = true;
}

/** A cursor that is not one this gateway made, or points past the end of its log. */
export class InvalidCursorError extends InvalidInputError {}

/** The gateway is shutting down and takes no new subscriptions (another instance will). */
export class ShuttingDownError extends GatewayError {
  override readonly code = 'SHUTTING_DOWN';
  override readonly retryable = true;
  override readonly expose = true;
}

/** The broker could not be reached or did not confirm. */
export class BrokerUnavailableError extends GatewayError {
  override readonly code = 'BROKER_UNAVAILABLE';
  override readonly retryable = true;
  override readonly expose = true;
}

/**
 * The broker is up but took no queue for this event (e.g. RabbitMQ returned it as unroutable):
 * the event waits in the outbox for a consumer or subscriber. Not a sign of a broker outage, so
 * it does not count against the relay's circuit breaker.
 */
export class UnroutableEventError extends GatewayError {
  override readonly code = 'UNROUTABLE';
  override readonly retryable = true;
}

/**
 * A batch publish that the broker did not fully confirm. Events listed in `failures` were not
 * confirmed; every other event of the batch was.
 */
export class PublishError extends GatewayError {
  override readonly code = 'PUBLISH_FAILED';
  override readonly retryable: boolean;
  readonly failures: ReadonlyMap<string, Error>;

  constructor(message: string, failures: ReadonlyMap<string, Error>, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options);
    this.failures = failures;
    this.retryable = options?.retryable ?? true;
  }

  /** The whole batch failed for one reason (not connected, channel closed). */
  static forAll(events: readonly { readonly id: string }[], reason: Error): PublishError {
    return new PublishError(`${events.length} events not published: ${reason.message}`, new Map(events.map((event) => [event.id, reason])), {
      cause: reason,
    });
  }

  /** Throws when any of `total` events failed, naming the first failure. */
  static throwIfAny(failures: ReadonlyMap<string, Error>, total: number, broker: string): void {
    const first = failures.values().next().value;
    if (!first) return;
    throw new PublishError(`${failures.size} of ${total} events were not confirmed by ${broker}: ${first.message}`, failures, { cause: first });
  }
}

/** The configuration is invalid; the message names the bad key. */
export class ConfigError extends GatewayError {
  override readonly code: string = 'CONFIG_INVALID';
}

/**
 * The broker refused who the gateway says it is: a wrong password, token, NKey or creds file, or a
 * certificate one side does not trust. Unlike a broker that is down, this never fixes itself, so a
 * first connection that meets it stops the start. The message names the environment variable to
 * fix and never contains the secret.
 */
export class BrokerAuthenticationError extends ConfigError {
  override readonly code = 'BROKER_AUTHENTICATION_FAILED';
}

/** A handler failed in a way that another attempt cannot fix: the message is dead-lettered at once. */
export class PermanentHandlerError extends GatewayError {
  override readonly code: string = 'HANDLER_PERMANENT_FAILURE';
}

/**
 * A webhook answered something other than 2xx, or did not answer in time: worth another try.
 * `retryAfterMs` is the wait its `Retry-After` asked for (429 and 503).
 */
export class WebhookError extends GatewayError {
  override readonly code = 'WEBHOOK_FAILED';
  override readonly retryable = true;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options?: { cause?: unknown; status?: number; retryAfterMs?: number }) {
    super(message, { cause: options?.cause, details: options?.status === undefined ? undefined : { status: options.status } });
    this.status = options?.status;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * A webhook refused the event with a 4xx other than 408 and 429 (400, 401, 404, 410, 422, …):
 * sending it again would get the same answer, so it is dead-lettered at once, status in the error.
 */
export class WebhookRejectedError extends PermanentHandlerError {
  override readonly code = 'WEBHOOK_REJECTED';
  readonly status: number;

  constructor(message: string, status: number) {
    super(message, { details: { status } });
    this.status = status;
  }
}

/** A broker message that is not a structured CloudEvent the gateway understands. */
export class InvalidMessageError extends GatewayError {
  override readonly code = 'INVALID_MESSAGE';
}

/** The broker lacks something the configuration needs (e.g. JetStream for durable consumers). */
export class BrokerCapabilityError extends GatewayError {
  override readonly code = 'BROKER_CAPABILITY_MISSING';
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
