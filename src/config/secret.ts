import { inspect } from 'node:util';

/**
 * A password, token, private key or seed from the configuration. The value sits in a private
 * field, so logging or serializing the configuration (pino, `JSON.stringify`, `util.inspect`,
 * template strings) shows `[secret from <source>]`, never the value; only `reveal()` hands it
 * over, at the one place that gives it to a broker client.
 */
export class Secret {
  readonly #value: string;

  /**
   * @param source Where the value came from, for messages: the environment variable
   *   (`KAFKA_SASL_PASSWORD_FILE`). Never the value itself.
   */
  constructor(
    value: string,
    readonly source: string,
  ) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return `[secret from ${this.source}]`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
