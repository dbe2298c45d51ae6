import type { Tracer, TracerProvider } from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { TracingSettings } from '../config/otel-env.js';
import type { Logger } from '../util/logger.js';

export interface TracingOptions {
  /**
   * Export spans through these processors (e.g. a `SimpleSpanProcessor` around an
   * `InMemorySpanExporter` in tests) instead of what the `OTEL_*` variables ask for. The gateway
   * shuts them down with its provider on `stop()`.
   */
  readonly spanProcessors?: readonly SpanProcessor[];
  /**
   * The embedding application's own provider, used as it is: the gateway neither registers it
   * globally nor shuts it down. Wins over `spanProcessors` and the `OTEL_*` variables.
   */
  readonly tracerProvider?: TracerProvider;
}

/** The name the gateway's tracer goes by (instrumentation scope). */
export const TRACER_NAME = 'event-gateway';

/**
 * The app's own tracer, or none. Trace context travels with every event whatever this says; what
 * it decides is whether spans are made and exported. Without export (the default) `tracer` is
 * undefined and call sites skip every span, attribute and context object, so tracing off costs a
 * property read per operation.
 *
 * The OpenTelemetry SDK is loaded by `start()` only when it is needed, and its provider is owned
 * here, passed down, and never registered globally: two apps in one process (tests) export to
 * their own processors, and a host application's global provider is left alone.
 */
export class Tracing {
  #tracer: Tracer | undefined;
  #owned: { shutdown(): Promise<void> } | undefined;
  #starting: Promise<void> | undefined;

  constructor(
    private readonly settings: TracingSettings,
    /** `messaging.system` on every span: the broker the events travel on. */
    readonly system: string,
    private readonly options: TracingOptions = {},
    private readonly logger?: Logger,
  ) {}

  /** Whether spans are made: true once `start()` loaded a provider. */
  get enabled(): boolean {
    return this.#tracer !== undefined;
  }

  /** The tracer spans are made with; undefined while spans are not exported. */
  get tracer(): Tracer | undefined {
    return this.#tracer;
  }

  /** Loads the SDK and makes the tracer, when export is asked for. Idempotent. */
  start(): Promise<void> {
    this.#starting ??= this.load();
    return this.#starting;
  }

  /** Flushes spans not yet exported and shuts the gateway's own provider down; spans stop. */
  async shutdown(): Promise<void> {
    await this.#starting?.catch(() => {});
    const owned = this.#owned;
    this.#tracer = undefined;
    this.#owned = undefined;
    if (!owned) return;
    try {
      await owned.shutdown();
    } catch (error) {
      this.logger?.warn({ err: error }, 'could not flush the last spans');
    }
  }

  private async load(): Promise<void> {
    const { tracerProvider, spanProcessors } = this.options;
    if (tracerProvider) {
      this.#tracer = tracerProvider.getTracer(TRACER_NAME);
      return;
    }
    if (!spanProcessors?.length && this.settings.exporters.length === 0) return;
    // Only now: a gateway that exports nothing never loads the SDK.
    const { createTracerProvider } = await import('./sdk.js');
    const provider = await createTracerProvider(this.settings, spanProcessors);
    this.#owned = provider;
    this.#tracer = provider.getTracer(TRACER_NAME);
    this.logger?.info({ exporters: spanProcessors?.length ? ['given'] : this.settings.exporters, serviceName: this.settings.serviceName }, 'exporting spans');
  }
}
