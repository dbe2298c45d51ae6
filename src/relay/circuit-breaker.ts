import { backoffDelay, type BackoffPolicy } from '../util/backoff.js';

export type CircuitState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

export interface CircuitBreakerOptions {
  /**
   * Consecutive failed publishes that open the circuit.
   * @default 3
   */
  failureThreshold?: number;
  /**
   * How long the circuit stays open before one probe is let through; grows with each
   * consecutive opening.
   * @default { initialMs: 1000, maxMs: 30000, multiplier: 2, jitter: 0.1 }
   */
  cooldown?: BackoffPolicy;
  onStateChange?: (state: CircuitState, reason: string | null) => void;
  now?: () => number;
}

/**
 * Keeps the relay from hammering a broker that is down: after `failureThreshold` failures in a
 * row no publish is attempted until the cooldown has passed; then a single probe decides whether
 * to close again (success) or stay open for longer (failure).
 */
export class CircuitBreaker {
  private current: CircuitState = 'CLOSED';
  private failures = 0;
  private openings = 0;
  private openUntil = 0;
  private probeInFlight = false;
  private reason: string | null = null;
  private readonly threshold: number;
  private readonly cooldown: BackoffPolicy;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions = {}) {
    this.threshold = options.failureThreshold ?? 3;
    this.cooldown = options.cooldown ?? { initialMs: 1000, maxMs: 30_000, multiplier: 2, jitter: 0.1 };
    this.now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    return this.current;
  }

  /** The error of the latest failed attempt, until an attempt succeeds. */
  get lastReason(): string | null {
    return this.reason;
  }

  /** Milliseconds until a probe may go, 0 when an attempt may be made now. */
  waitMs(): number {
    if (this.current === 'CLOSED') return 0;
    if (this.current === 'HALF_OPEN') return this.probeInFlight ? this.cooldown.initialMs : 0;
    return Math.max(0, this.openUntil - this.now());
  }

  /**
   * Asks to make an attempt. True when closed, or when the cooldown is over and no other probe
   * is out (the circuit is then HALF_OPEN and this attempt is the probe).
   */
  tryAcquire(): boolean {
    if (this.current === 'CLOSED') return true;
    if (this.current === 'OPEN') {
      if (this.now() < this.openUntil) return false;
      this.transition('HALF_OPEN', this.reason);
    }
    if (this.probeInFlight) return false;
    this.probeInFlight = true;
    return true;
  }

  /** True while the next attempt would be a probe, so the caller can keep it small. */
  get probing(): boolean {
    return this.current !== 'CLOSED';
  }

  /** Gives back an attempt that was acquired but not made (nothing to publish). */
  release(): void {
    this.probeInFlight = false;
  }

  success(): void {
    this.failures = 0;
    this.reason = null;
    this.probeInFlight = false;
    if (this.current !== 'CLOSED') {
      this.openings = 0;
      this.transition('CLOSED', null);
    }
  }

  failure(reason: string): void {
    this.failures++;
    this.probeInFlight = false;
    this.reason = reason;
    if (this.current === 'HALF_OPEN' || (this.current === 'CLOSED' && this.failures >= this.threshold)) {
      this.openings++;
      this.openUntil = this.now() + backoffDelay(this.cooldown, this.openings);
      this.transition('OPEN', reason);
    }
  }

  private transition(state: CircuitState, reason: string | null): void {
    if (state === this.current) return;
    this.current = state;
    this.options.onStateChange?.(state, reason);
  }
}
